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
from workers.ner.docs import offline_redoc

MAX_TEXTS = 256
MAX_BODY_BYTES = 1_000_000
# Texts waiting for the model before new requests are turned away with 503 + Retry-After: a
# client flood must not grow memory and latency without bound.
MAX_QUEUED_TEXTS = 4096
RETRY_AFTER_S = 1


class QueueFull(Exception):
    """The model's queue holds ``MAX_QUEUED_TEXTS`` texts already."""


class BodyTooLarge(HTTPException):
    """Raised while receiving: an HTTPException, so FastAPI answers it as a 413 instead of
    turning it into "error parsing the body"."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over {limit} bytes")


class BodyLimit:
    """ASGI middleware: refuse a request body over ``limit`` bytes while it is being received.

    A ``Content-Length`` over the limit is refused before reading; a chunked body (no length)
    is counted as it arrives and refused at the first chunk past the limit, so a 2 MB (or 2 GB)
    upload never sits in memory whole."""

    def __init__(self, app, limit: int = MAX_BODY_BYTES) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            return await self._refuse(send)
        seen = 0
        started = False

        async def counted_receive():
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)
            return msg

        async def tracked_send(msg):
            nonlocal started
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send) -> None:
        body = f'{{"detail": "request body over {self.limit} bytes"}}'.encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


class NerRequest(BaseModel):
    texts: list[str] = Field(min_length=1, max_length=MAX_TEXTS,
                             description=f"1 to {MAX_TEXTS} headlines")
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)


class Entity(BaseModel):
    start: int
    end: int
    label: str
    text: str
    score: float | None = Field(description="the model's confidence; null when it has none")
    ticker: str | None = Field(default=None, description="linked ticker (alias table); null "
                                                         "when unknown or no table is loaded")
    link_score: float | None = None


class NerResponse(BaseModel):
    entities: list[list[Entity]]
    tickers: list[list[str]] | None = Field(
        default=None, description="each headline's linked tickers, once each, in text order")
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
                 metrics: dict | None = None, max_queued: int = MAX_QUEUED_TEXTS) -> None:
        self.tagger, self.max_batch, self.max_wait = tagger, max_batch, max_wait_ms / 1000
        self.max_queued, self.queued = max_queued, 0
        self.queue: asyncio.Queue[_Item] = asyncio.Queue()
        self.metrics = metrics or {}
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()

    async def submit(self, texts: list[str], threshold: float | None) -> list:
        if self.queued + len(texts) > self.max_queued:
            raise QueueFull(f"{self.queued} texts already wait for the model")
        fut = asyncio.get_running_loop().create_future()
        self.queued += len(texts)
        await self.queue.put(_Item(texts, threshold, fut))
        try:
            return await fut
        finally:
            self.queued -= len(texts)

    async def _predict_group(self, loop, group: list[_Item], thr: float | None) -> None:
        """One model call for the group; if it raises, each request is retried alone, so one
        text that makes the model fail fails only its own request."""
        texts = [t for it in group for t in it.texts]
        if "batch" in self.metrics:
            self.metrics["batch"].observe(len(texts))
        try:
            spans = await loop.run_in_executor(None, self.tagger.predict, texts, thr)
        except Exception as e:
            if len(group) == 1:
                if not group[0].future.done():
                    group[0].future.set_exception(e)
                return
            for it in group:
                await self._predict_group(loop, [it], thr)
            return
        i = 0
        for it in group:
            if not it.future.done():
                it.future.set_result(spans[i:i + len(it.texts)])
            i += len(it.texts)

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
                await self._predict_group(loop, group, thr)


def create_app(model_dir: str, max_batch: int = 64, max_wait_ms: float = 0.0,
               aliases: str | None = None) -> FastAPI:
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
        if aliases:
            from training.linking import load_cached

            state["table"] = await loop.run_in_executor(None, load_cached, aliases)
        tagger.predict(["warm up"])
        state["batcher"] = MicroBatcher(tagger, max_batch, max_wait_ms, metrics)
        state["batcher"].start()
        state["kind"] = tagger.kind
        state["ready"] = True
        yield
        await state["batcher"].stop()

    # Swagger UI and ReDoc from the installed package, not a CDN: the docs work offline.
    from fastapi_offline import FastAPIOffline

    app = FastAPIOffline(title="tickertag NER", version="1", lifespan=lifespan, redoc_url=None,
                         description="Company mentions in financial headlines, as character "
                                     "spans.")
    offline_redoc(app)

    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)

    @app.middleware("http")
    async def measure(request: Request, call_next):
        t0 = time.perf_counter()
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
        try:
            spans = await state["batcher"].submit(req.texts, req.threshold)
        except QueueFull as e:
            raise HTTPException(503, f"busy: {e}; retry later",
                                headers={"Retry-After": str(RETRY_AFTER_S)}) from None
        metrics["headlines"].inc(len(req.texts))
        from training.linking import linked

        docs = [linked(doc, text, state.get("table")) for doc, text in zip(spans, req.texts,
                                                                          strict=True)]
        return NerResponse(
            entities=[[Entity(**e) for e in ents] for ents, _ in docs],
            tickers=[t for _, t in docs] if state.get("table") is not None else None,
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
