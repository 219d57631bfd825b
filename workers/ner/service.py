"""HTTP service for a trained model: ``POST /v1/ner`` with micro-batching.

Requests that arrive while the model is busy are merged into its next call, so batches grow
with load and a lone request never waits: an idle model starts at once. ``max_wait_ms`` > 0
additionally holds a batch open that long for company (worth it only where a bigger batch is
much cheaper per text, e.g. on a GPU; on this CPU GLiNER's time grows about linearly with the
batch). Each model call takes at most ``max_batch`` texts and ``MAX_CALL_CHARS`` characters:
a large request is tagged in pieces, taking turns with the requests that arrive meanwhile, so
a one-headline request waits for one piece, not for 256 long texts. The model runs in one
worker thread so the event loop keeps accepting requests while it computes. Limits are
explicit and answered with clear 4xx errors, a full queue with 503 + Retry-After.

Over 300 lines because the micro-batcher (merging, pieces, turns, a client that left) and the
app that feeds it change together: they are one mechanism."""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field

from common.records import MAX_TITLE_CHARS
from workers.ner.docs import offline_redoc
from workers.ner.metrics import exposition, service_metrics
from workers.ner.middleware import MAX_BODY_BYTES, BodyLimit, RequestMetrics

MAX_TEXTS = 256
# Texts waiting for the model before new requests are turned away with 503 + Retry-After: a
# client flood must not grow memory and latency without bound.
MAX_QUEUED_TEXTS = 4096
RETRY_AFTER_S = 1
# Most characters per model call (a text longer than this goes alone): with ``max_batch`` it
# bounds how long one call holds the model, hence how long any other request waits for it.
MAX_CALL_CHARS = 8000


class QueueFull(Exception):
    """The model's queue holds ``MAX_QUEUED_TEXTS`` texts already."""


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
    """One request in the model's line: its texts, how many are tagged, their spans so far."""

    texts: list[str]
    threshold: float | None
    future: asyncio.Future = field(repr=False)
    done: int = 0
    spans: list = field(default_factory=list, repr=False)

    @property
    def left(self) -> int:
        return len(self.texts) - self.done


class MicroBatcher:
    """Feeds one model thread from a line of requests, a bounded piece of work per call.

    Each model call takes at most ``max_batch`` texts and ``max_chars`` characters (a text
    longer than that goes alone): a 256 x 2,000-character request would otherwise hold the
    model for seconds while a one-headline request queued behind it waits as long. Requests
    are served from the front of the line, those that fit sharing a call (micro-batching); a
    larger one is tagged a piece per call and, after each piece, goes to the back of the
    line, behind those that arrived while the model ran. So a small request waits for at most
    the piece in progress, and large requests take turns."""

    def __init__(self, tagger, max_batch: int = 64, max_wait_ms: float = 0.0,
                 metrics: dict | None = None, max_queued: int = MAX_QUEUED_TEXTS,
                 max_chars: int = MAX_CALL_CHARS) -> None:
        self.tagger, self.max_batch, self.max_wait = tagger, max_batch, max_wait_ms / 1000
        self.max_chars = max_chars
        self.max_queued, self.queued = max_queued, 0
        self.queue: asyncio.Queue[_Item] = asyncio.Queue()
        self.line: deque[_Item] = deque()
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

    def _admit(self) -> None:
        """Requests that arrived go to the back of the line, in arrival order."""
        while not self.queue.empty():
            self.line.append(self.queue.get_nowait())

    def _call_is_full(self) -> bool:
        """Whether the line holds a full call's texts or characters already."""
        texts = [t for it in self.line for t in it.texts[it.done:]]
        return len(texts) >= self.max_batch or sum(map(len, texts)) >= self.max_chars

    async def _hold_open(self, loop: asyncio.AbstractEventLoop) -> None:
        """With ``max_wait_ms``: wait that long for company while the line holds less than a
        full call."""
        deadline = loop.time() + self.max_wait
        while not self._call_is_full():
            timeout = deadline - loop.time()
            if timeout <= 0:
                return
            try:
                self.line.append(await asyncio.wait_for(self.queue.get(), timeout))
            except TimeoutError:
                return

    def _next_call(self) -> list[tuple[_Item, int]]:
        """(request, number of its next texts) for one model call, from the front of the line,
        one threshold, within ``max_batch`` texts and ``max_chars`` characters: requests that
        fit whole share the call; one that does not fit goes alone, as the piece of it that
        fits. A piece never shares its call with small requests: they would wait for the
        whole piece instead of for the model alone."""
        pieces: list[tuple[_Item, int]] = []
        n = chars = 0
        for it in self.line:
            if pieces and it.threshold != pieces[0][0].threshold:
                continue  # its own call, next
            k = 0
            while k < it.left and n + k < self.max_batch:
                c = len(it.texts[it.done + k])
                if n + k and chars + c > self.max_chars:
                    break
                chars, k = chars + c, k + 1
            if k == it.left:
                pieces.append((it, k))
                n += k
            else:
                if not pieces:
                    pieces.append((it, k))
                break  # not overtaken by a later request of its threshold
        return pieces

    async def _predict_pieces(self, loop: asyncio.AbstractEventLoop,
                              pieces: list[tuple[_Item, int]]) -> None:
        """One model call for the pieces; if it raises, each request's piece is retried alone,
        so one text that makes the model fail fails only its own request."""
        texts = [t for it, k in pieces for t in it.texts[it.done:it.done + k]]
        if "batch" in self.metrics:
            self.metrics["batch"].observe(len(texts))
        try:
            spans = await loop.run_in_executor(None, self.tagger.predict, texts,
                                               pieces[0][0].threshold)
        except Exception as e:
            if len(pieces) == 1:
                it = pieces[0][0]
                if not it.future.done():
                    it.future.set_exception(e)
                return
            for piece in pieces:
                await self._predict_pieces(loop, [piece])
            return
        i = 0
        for it, k in pieces:
            it.spans.extend(spans[i:i + k])
            it.done += k
            i += k
            if not it.left and not it.future.done():
                it.future.set_result(it.spans)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self.line:
                self.line.append(await self.queue.get())
            self._admit()
            if self.max_wait > 0:
                await self._hold_open(loop)
            # finished, failed, or abandoned by its client (a cancelled future): off the line
            self.line = deque(it for it in self.line if not it.future.done())
            pieces = self._next_call()
            if not pieces:
                continue
            await self._predict_pieces(loop, pieces)
            had_turn = {id(it) for it, _ in pieces}
            rest = [it for it in self.line if id(it) in had_turn and not it.future.done()]
            self.line = deque(it for it in self.line
                              if id(it) not in had_turn and not it.future.done())
            self._admit()  # arrivals during the call go before a request that had its turn
            self.line.extend(rest)


def create_app(model_dir: str, max_batch: int = 64, max_wait_ms: float = 0.0,
               aliases: str | None = None, max_chars: int = MAX_CALL_CHARS,
               threads: int | None = 1) -> FastAPI:
    from concurrent.futures import ThreadPoolExecutor

    from training.inference import load_tagger

    reg, metrics = service_metrics()
    state: dict = {"ready": False}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(max_workers=1, thread_name_prefix="model"))
        # loaded in the model thread, which OpenMP's limit is of; one thread by default: the
        # pools' own worker threads spin between a small model's products and took the event
        # loop's core (16 clients: 122 against 199 headlines/s, p99 470 against 318 ms)
        tagger = await loop.run_in_executor(None, load_tagger, model_dir, threads)
        if aliases:  # read again in the background once rebuilt (``aliases build``)
            from linking.linker import LiveTable

            state["aliases"] = await loop.run_in_executor(None, LiveTable, aliases)
        tagger.predict(["warm up"])
        state["batcher"] = MicroBatcher(tagger, max_batch, max_wait_ms, metrics,
                                        max_chars=max_chars)
        state["batcher"].start()
        state["kind"] = tagger.kind
        from training.manifest import model_fingerprint

        state["fingerprint"] = model_fingerprint(model_dir)  # the weights it loaded, by content
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

    app.add_middleware(RequestMetrics, metrics=metrics, path="/v1/ner")

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
        from linking.linker import linked

        table = state["aliases"].get() if "aliases" in state else None
        docs = [linked(doc, text, table) for doc, text in zip(spans, req.texts, strict=True)]
        return NerResponse(
            entities=[[Entity(**e) for e in ents] for ents, _ in docs],
            tickers=[t for _, t in docs] if table is not None else None,
            model=state["kind"], took_ms=round(1000 * (time.perf_counter() - t0), 2))

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz():
        if not state["ready"]:
            return JSONResponse({"status": "loading"}, 503)
        # pid: which of ``serve --workers N``'s processes answered
        return {"status": "ready", "model": state["kind"], "fingerprint": state["fingerprint"],
                "pid": os.getpid()}

    @app.get("/metrics")
    async def prom() -> PlainTextResponse:
        return PlainTextResponse(exposition(reg), media_type=CONTENT_TYPE_LATEST)

    return app
