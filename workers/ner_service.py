"""HTTP service for a trained model: ``POST /v1/ner`` with micro-batching.

Requests that arrive while the model is busy are merged into its next call (up to
``max_batch`` texts), so batches grow with load and a lone request never waits: an idle model
starts at once. ``max_wait_ms`` > 0 additionally holds a batch open that long for company
(worth it only where a bigger batch is much cheaper per text, e.g. on a GPU; on this CPU
GLiNER's time grows about linearly with the batch). The model runs in one worker thread so the
event loop keeps accepting requests while it computes. Limits are explicit and answered with clear 4xx errors.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from pydantic import BaseModel, Field

from common.records import MAX_TITLE_CHARS

MAX_TEXTS = 256
MAX_BODY_BYTES = 1_000_000


class NerRequest(BaseModel):
    texts: list[str] = Field(min_length=1, max_length=MAX_TEXTS,
                             description=f"1 to {MAX_TEXTS} headlines")
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)


class Entity(BaseModel):
    start: int
    end: int
    label: str
    text: str
    score: float | None


class NerResponse(BaseModel):
    entities: list[list[Entity]]
    model: str
    took_ms: float


@dataclass
class _Item:
    texts: list[str]
    threshold: float | None
    future: asyncio.Future = field(repr=False)


class MicroBatcher:
    """Collects concurrent requests into batches for one model thread."""

    def __init__(self, tagger, max_batch: int = 64, max_wait_ms: float = 0.0,
                 metrics: dict | None = None) -> None:
        self.tagger, self.max_batch, self.max_wait = tagger, max_batch, max_wait_ms / 1000
        self.queue: asyncio.Queue[_Item] = asyncio.Queue()
        self.metrics = metrics or {}
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()

    async def submit(self, texts: list[str], threshold: float | None) -> list:
        fut = asyncio.get_running_loop().create_future()
        await self.queue.put(_Item(texts, threshold, fut))
        return await fut

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = [await self.queue.get()]
            n = len(items[0].texts)
            while n < self.max_batch and not self.queue.empty():  # arrived while busy
                items.append(self.queue.get_nowait())
                n += len(items[-1].texts)
            deadline = loop.time() + self.max_wait
            while n < self.max_batch and self.max_wait > 0:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    nxt = await asyncio.wait_for(self.queue.get(), timeout)
                except TimeoutError:
                    break
                items.append(nxt)
                n += len(nxt.texts)
            # one call per distinct threshold (almost always one)
            groups: dict[float | None, list[_Item]] = {}
            for it in items:
                groups.setdefault(it.threshold, []).append(it)
            for thr, group in groups.items():
                texts = [t for it in group for t in it.texts]
                if "batch" in self.metrics:
                    self.metrics["batch"].observe(len(texts))
                try:
                    spans = await loop.run_in_executor(None, self.tagger.predict, texts, thr)
                except Exception as e:  # the request fails, the service keeps serving
                    for it in group:
                        if not it.future.done():
                            it.future.set_exception(e)
                    continue
                i = 0
                for it in group:
                    if not it.future.done():
                        it.future.set_result(spans[i:i + len(it.texts)])
                    i += len(it.texts)


def create_app(model_dir: str, max_batch: int = 64, max_wait_ms: float = 0.0) -> FastAPI:
    from concurrent.futures import ThreadPoolExecutor

    from training.inference import load_tagger

    reg = CollectorRegistry()
    metrics = {
        "requests": Counter("tickertag_ner_requests_total", "HTTP requests", ["status"],
                            registry=reg),
        "headlines": Counter("tickertag_ner_headlines_total", "Headlines tagged", registry=reg),
        "latency": Histogram("tickertag_ner_request_seconds", "Request latency", registry=reg,
                             buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5)),
        "batch": Histogram("tickertag_ner_batch_size", "Texts per model call", registry=reg,
                           buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256)),
    }
    state: dict = {"ready": False}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(max_workers=1, thread_name_prefix="model"))
        tagger = await loop.run_in_executor(None, load_tagger, model_dir)
        tagger.predict(["warm up"])
        state["batcher"] = MicroBatcher(tagger, max_batch, max_wait_ms, metrics)
        state["batcher"].start()
        state["kind"] = tagger.kind
        state["ready"] = True
        yield
        await state["batcher"].stop()

    app = FastAPI(title="tickertag NER", version="1", lifespan=lifespan,
                  description="Company mentions in financial headlines, as character spans.")

    @app.middleware("http")
    async def limit_and_measure(request: Request, call_next):
        t0 = time.perf_counter()
        size = request.headers.get("content-length")
        if size and size.isdigit() and int(size) > MAX_BODY_BYTES:
            metrics["requests"].labels("413").inc()
            return JSONResponse({"detail": f"request body over {MAX_BODY_BYTES} bytes"}, 413)
        resp = await call_next(request)
        if request.url.path == "/v1/ner":
            metrics["requests"].labels(str(resp.status_code)).inc()
            metrics["latency"].observe(time.perf_counter() - t0)
        return resp

    @app.post("/v1/ner", response_model=NerResponse)
    async def ner(req: NerRequest) -> NerResponse:
        for i, t in enumerate(req.texts):
            if len(t) > MAX_TITLE_CHARS:
                raise HTTPException(422, f"texts[{i}]: {len(t)} characters, longer than "
                                         f"{MAX_TITLE_CHARS}")
        if not state["ready"]:
            raise HTTPException(503, "model not loaded yet")
        t0 = time.perf_counter()
        spans = await state["batcher"].submit(req.texts, req.threshold)
        metrics["headlines"].inc(len(req.texts))
        return NerResponse(
            entities=[[Entity(start=s.start, end=s.end, label=s.label, text=s.text,
                              score=None if s.score is None else round(float(s.score), 4))
                       for s in doc] for doc in spans],
            model=state["kind"], took_ms=round(1000 * (time.perf_counter() - t0), 2))

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz():
        if not state["ready"]:
            return JSONResponse({"status": "loading"}, 503)
        return {"status": "ready", "model": state["kind"]}

    @app.get("/metrics")
    async def prom() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(reg), media_type=CONTENT_TYPE_LATEST)

    return app
