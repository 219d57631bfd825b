"""A local OpenAI-compatible Batch API in front of any OpenAI-compatible chat endpoint.

Why: providers bill batch requests at about half the per-token price, and the annotate stage
can submit a run's requests that way (``TICKERTAG_LLM_MODE=batch``). No provider is reachable
from here, so the batch path is built and measured against this server, which implements the
part of the API the worker uses, with the provider's semantics:

- ``POST /v1/files`` (multipart, ``purpose=batch``), ``GET /v1/files/{id}`` and
  ``GET /v1/files/{id}/content``;
- ``POST /v1/batches`` (``input_file_id``, ``endpoint``, ``completion_window``, ``metadata``),
  ``GET /v1/batches/{id}``, ``GET /v1/batches`` (newest first), ``POST /v1/batches/{id}/cancel``;
- a batch moves ``validating`` -> ``in_progress`` -> ``finalizing`` -> ``completed``, or to
  ``failed`` (an input file that does not validate: nothing runs), ``expired`` (its window ended
  first: what finished is in the output file, the rest in the error file as ``batch_expired``)
  or ``cancelled``; a request the upstream answers with an error goes to the error file with
  its status code, as a provider's partial failure does;
- ``POST /v1/chat/completions`` is passed to the upstream, so one base URL serves both modes
  (as a provider's does), and ``/stats`` counts what was asked, for tests and benchmarks.

Each request of a batch is sent to ``{upstream}/v1/chat/completions`` (llama.cpp from
``tickertag llm serve``, or the replay server ``cascade.replay``, which is cheaper for tests).
Two knobs make a provider's slow days reproducible: ``window_s`` (what a completion window
lasts here, instead of 24 h) and ``stall_after`` (a batch stops being worked on after that many
requests, so it expires part done, deterministically). Files live in memory: a restart of this
server loses its batches, as a provider never does, so tests never restart it.

Run it as ``tickertag llm batch-server --upstream URL`` or ``python -m common.batch_server``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from common.batch_jobs import (
    CHAT_ENDPOINT,
    TERMINAL,
    Batch,
    BatchServer,
    StoredFile,
    new_id,
    window_seconds,
)

__all__ = ["CHAT_ENDPOINT", "BatchServer", "make_app", "start_batch_server"]


def _error(status: int, message: str, kind: str = "invalid_request_error") -> web.Response:
    return web.json_response({"error": {"message": message, "type": kind}}, status=status)


def make_app(server: BatchServer) -> web.Application:
    """The aiohttp application serving ``server``'s files and batches."""

    async def upload(request: web.Request) -> web.Response:
        form = await request.post()
        purpose, part = form.get("purpose"), form.get("file")
        if purpose != "batch" or not isinstance(part, web.FileField):
            return _error(400, "expected multipart fields purpose=batch and file")
        f = server.add_file(part.file.read(), part.filename or "input.jsonl", "batch")
        server.stats["files_uploaded"] += 1
        return web.json_response(f.to_json())

    def file_of(request: web.Request) -> StoredFile | None:
        return server.files.get(request.match_info["file_id"])

    async def file_info(request: web.Request) -> web.Response:
        f = file_of(request)
        return web.json_response(f.to_json()) if f else _error(404, "no such file")

    async def file_content(request: web.Request) -> web.Response:
        f = file_of(request)
        if f is None:
            return _error(404, "no such file")
        return web.Response(body=f.content, content_type="application/jsonl")

    async def create(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            file_id, endpoint = body["input_file_id"], body["endpoint"]
            window = body.get("completion_window", "24h")
            window_s = window_seconds(window)
        except (ValueError, KeyError, TypeError) as e:
            return _error(400, f"expected input_file_id, endpoint, completion_window: {e}")
        if endpoint != CHAT_ENDPOINT:
            return _error(400, f"endpoint {endpoint!r} is not supported (only {CHAT_ENDPOINT})")
        if file_id not in server.files:
            return _error(404, f"no such file {file_id!r}")
        deadline = time.time() + (server.window_s if server.window_s is not None else window_s)
        batch = Batch(new_id("batch"), file_id, endpoint, window, deadline,
                      body.get("metadata"))
        server.batches[batch.id] = batch
        server.stats["batches_created"] += 1
        server.start(batch)
        return web.json_response(batch.to_json())

    def batch_of(request: web.Request) -> Batch | None:
        return server.batches.get(request.match_info["batch_id"])

    async def retrieve(request: web.Request) -> web.Response:
        b = batch_of(request)
        server.stats["batches_retrieved"] += 1
        return web.json_response(b.to_json()) if b else _error(404, "no such batch")

    async def cancel(request: web.Request) -> web.Response:
        b = batch_of(request)
        if b is None:
            return _error(404, "no such batch")
        if b.status not in TERMINAL:
            b.move("cancelling")
            b.cancel.set()
        return web.json_response(b.to_json())

    async def listing(request: web.Request) -> web.Response:
        limit = int(request.query.get("limit", "20"))
        rows = sorted(server.batches.values(), key=lambda b: b.created_at, reverse=True)
        after = request.query.get("after")
        if after:
            ids = [b.id for b in rows]
            rows = rows[ids.index(after) + 1:] if after in ids else []
        page = rows[:limit]
        return web.json_response({"object": "list", "data": [b.to_json() for b in page],
                                  "has_more": len(rows) > limit,
                                  "first_id": page[0].id if page else None,
                                  "last_id": page[-1].id if page else None})

    async def chat(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "expected a JSON chat completion request")
        server.stats["chat_proxied"] += 1
        status, payload = await server.forward(body)
        return web.json_response(payload, status=status)

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "upstream": server.upstream})

    async def read_stats(_: web.Request) -> web.Response:
        states = Counter(b.status for b in server.batches.values())
        return web.json_response({**server.stats, "states": dict(states)})

    async def on_startup(_: web.Application) -> None:
        server.session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=server.request_timeout_s),
            connector=aiohttp.TCPConnector(limit=0))

    async def on_cleanup(_: web.Application) -> None:
        await server.close()

    app = web.Application(client_max_size=512 << 20)  # a provider takes input files to 200 MB
    app.router.add_post("/v1/files", upload)
    app.router.add_get("/v1/files/{file_id}", file_info)
    app.router.add_get("/v1/files/{file_id}/content", file_content)
    app.router.add_post("/v1/batches", create)
    app.router.add_get("/v1/batches", listing)
    app.router.add_get("/v1/batches/{batch_id}", retrieve)
    app.router.add_post("/v1/batches/{batch_id}/cancel", cancel)
    app.router.add_post(CHAT_ENDPOINT, chat)
    app.router.add_get("/health", health)
    app.router.add_get("/stats", read_stats)
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app


def server_argv(upstream: str, port: int, host: str = "127.0.0.1", concurrency: int = 8,
                window_s: float | None = None, stall_after: int | None = None) -> list[str]:
    """The command line that runs this server as its own process."""
    argv = [sys.executable, "-m", "common.batch_server", "--upstream", upstream,
            "--host", host, "--port", str(port), "--concurrency", str(concurrency)]
    if window_s is not None:
        argv += ["--window-s", str(window_s)]
    if stall_after is not None:
        argv += ["--stall-after", str(stall_after)]
    return argv


def start_batch_server(upstream: str, port: int, log_dir: Path, timeout: float = 60,
                       **options: Any):
    """Start the server as its own process (as ``tickertag llm batch-server`` would) and wait
    until it answers; returns the ``ManagedProcess``."""
    import httpx

    from common.services import ManagedProcess, wait_until

    proc = ManagedProcess("batch-server", server_argv(upstream, port, **options),
                          log_dir / f"batch-server-{port}.log")
    url = f"http://127.0.0.1:{port}/health"
    wait_until(lambda: httpx.get(url, timeout=2).status_code == 200, timeout, "batch server",
               proc)
    return proc


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="OpenAI-compatible Batch API over a chat endpoint")
    ap.add_argument("--upstream", required=True, help="base URL of the chat endpoint")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8090)
    ap.add_argument("--concurrency", type=int, default=8,
                    help="requests of all batches sent to the upstream at once, per batch")
    ap.add_argument("--window-s", type=float, default=None,
                    help="what a completion window lasts here (default: as requested, 24h)")
    ap.add_argument("--stall-after", type=int, default=None,
                    help="stop working on a batch after this many requests (it then expires)")
    a = ap.parse_args(argv)
    server = BatchServer(a.upstream, a.concurrency, a.window_s, a.stall_after)
    print(f"batch API on http://{a.host}:{a.port}/v1 over {a.upstream}", flush=True)
    web.run_app(make_app(server), host=a.host, port=a.port, print=None)


if __name__ == "__main__":
    main()
