"""ASGI middleware of the NER service: a body-size limit enforced while the body arrives, and
request metrics, both plain ASGI (no per-request task or response copy on the event loop that
feeds the micro-batcher)."""

from __future__ import annotations

import time

from fastapi import HTTPException

MAX_BODY_BYTES = 1_000_000


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


class RequestMetrics:
    """ASGI middleware: count ``path``'s requests by status and observe their latency, up to
    the last byte of the answer. Plain ASGI rather than ``@app.middleware("http")``, whose
    wrapper runs each request in a task of its own and copies the response through a stream:
    a cost on every request that the micro-batcher's event loop pays under load."""

    def __init__(self, app, metrics: dict, path: str) -> None:
        self.app, self.metrics, self.path = app, metrics, path

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope.get("path") != self.path:
            return await self.app(scope, receive, send)
        t0, status = time.perf_counter(), "500"

        async def timed_send(msg):
            nonlocal status
            if msg["type"] == "http.response.start":
                status = str(msg["status"])
            await send(msg)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            self.metrics["requests"].labels(status).inc()
            self.metrics["latency"].observe(time.perf_counter() - t0)
