"""The batches of the local Batch API (``common.batch_server``): files, input validation, the
states a batch goes through, and running its requests against the upstream chat endpoint.

Kept apart from the HTTP layer so that what a batch *does* (the provider's semantics: a file
that does not validate fails the batch and nothing runs; a request the upstream refuses is a
partial failure in the error file; the window's end expires what is unfinished and keeps what
finished) reads in one place.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

CHAT_ENDPOINT = "/v1/chat/completions"
TERMINAL = ("completed", "expired", "failed", "cancelled")
_WINDOW = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def window_seconds(window: str) -> float:
    """``24h`` -> 86400.0; a provider accepts ``24h`` only, this server any ``<n>[smhd]``."""
    m = _WINDOW.match(window.strip())
    if not m:
        raise ValueError(f"completion_window {window!r}: expected e.g. '24h'")
    return float(m.group(1)) * _UNIT_S[m.group(2)]


def new_id(prefix: str) -> str:
    """A provider-style id: ``file_...``, ``batch_...``, ``req_...``."""
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


@dataclass
class StoredFile:
    id: str
    filename: str
    purpose: str
    content: bytes
    created_at: int = field(default_factory=lambda: int(time.time()))

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "object": "file", "bytes": len(self.content),
                "created_at": self.created_at, "filename": self.filename,
                "purpose": self.purpose}


@dataclass
class Batch:
    id: str
    input_file_id: str
    endpoint: str
    completion_window: str
    deadline: float
    metadata: dict[str, str] | None
    status: str = "validating"
    created_at: int = field(default_factory=lambda: int(time.time()))
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: dict[str, Any] | None = None
    counts: Counter[str] = field(default_factory=Counter)
    times: dict[str, int] = field(default_factory=dict)
    cancel: asyncio.Event = field(default_factory=asyncio.Event)

    def move(self, status: str) -> None:
        self.status = status
        self.times[f"{status}_at"] = int(time.time())

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "object": "batch", "endpoint": self.endpoint,
                "errors": self.errors, "input_file_id": self.input_file_id,
                "completion_window": self.completion_window, "status": self.status,
                "output_file_id": self.output_file_id, "error_file_id": self.error_file_id,
                "created_at": self.created_at, "expires_at": int(self.deadline),
                **{k: self.times.get(k) for k in (
                    "in_progress_at", "finalizing_at", "completed_at", "failed_at",
                    "expired_at", "cancelling_at", "cancelled_at")},
                "request_counts": {"total": self.counts["total"],
                                   "completed": self.counts["completed"],
                                   "failed": self.counts["failed"]},
                "metadata": self.metadata}


def _validate(content: bytes, endpoint: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The input file's requests, or the provider-style errors that fail the whole batch."""
    requests: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    for n, raw in enumerate(content.decode("utf-8", errors="replace").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
            cid, url, body = line["custom_id"], line["url"], line["body"]
        except (ValueError, KeyError, TypeError):
            errors.append({"code": "invalid_json_line", "line": n,
                           "message": "not a JSON object with custom_id, url and body"})
            continue
        why = ("custom_id is not a string" if not isinstance(cid, str)
               else f"duplicate custom_id {cid!r}" if cid in seen
               else f"url {url!r} is not the batch's endpoint {endpoint!r}" if url != endpoint
               else "method must be POST" if line.get("method", "POST") != "POST"
               else "body is not an object" if not isinstance(body, dict) else None)
        if why:
            errors.append({"code": "invalid_request", "line": n, "message": why})
            continue
        seen.add(cid)
        requests.append(line)
    if not requests and not errors:
        errors.append({"code": "empty_file", "line": None, "message": "no requests"})
    return requests, errors


class BatchServer:
    """The batches and files of one server process, and the tasks that run the batches."""

    def __init__(self, upstream: str, concurrency: int = 8, window_s: float | None = None,
                 stall_after: int | None = None, request_timeout_s: float = 120.0) -> None:
        self.upstream = upstream.rstrip("/")
        self.concurrency, self.window_s, self.stall_after = concurrency, window_s, stall_after
        self.request_timeout_s = request_timeout_s
        self.files: dict[str, StoredFile] = {}
        self.batches: dict[str, Batch] = {}
        self.stats: Counter[str] = Counter()
        self.session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task] = set()

    def add_file(self, content: bytes, filename: str, purpose: str) -> StoredFile:
        f = StoredFile(new_id("file"), filename, purpose, content)
        self.files[f.id] = f
        return f

    # -- the upstream ---------------------------------------------------------------------
    async def forward(self, body: dict[str, Any]) -> tuple[int, Any]:
        """One chat completion from the upstream: (status, JSON body or error object)."""
        assert self.session is not None
        self.stats["upstream_requests"] += 1
        try:
            async with self.session.post(self.upstream + CHAT_ENDPOINT, json=body) as resp:
                try:
                    payload = await resp.json(content_type=None)
                except ValueError:
                    payload = {"error": {"message": (await resp.text())[:500],
                                         "type": "upstream_error"}}
                return resp.status, payload
        except (aiohttp.ClientError, TimeoutError) as e:
            return 502, {"error": {"message": f"upstream: {type(e).__name__}: {e}",
                                   "type": "server_error"}}

    # -- running one batch ----------------------------------------------------------------
    def start(self, batch: Batch) -> None:
        task = asyncio.get_running_loop().create_task(self._run(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: Batch) -> None:
        try:
            await self._work(batch)
        except Exception as e:  # a bug here must not leave a batch in progress for ever
            batch.errors = {"object": "list", "data": [
                {"code": "server_error", "line": None, "message": f"{type(e).__name__}: {e}"}]}
            batch.move("failed")
            raise

    async def _work(self, batch: Batch) -> None:
        requests, errors = _validate(self.files[batch.input_file_id].content, batch.endpoint)
        if errors:
            batch.errors = {"object": "list", "data": errors}
            batch.move("failed")
            return
        batch.counts["total"] = len(requests)
        batch.move("in_progress")
        out: dict[str, dict[str, Any]] = {}
        err: dict[str, dict[str, Any]] = {}
        sem = asyncio.Semaphore(max(1, self.concurrency))
        started = 0

        async def one(line: dict[str, Any]) -> None:
            nonlocal started
            async with sem:
                if self.stall_after is not None and started >= self.stall_after:
                    await asyncio.Event().wait()  # an overloaded provider: never gets to it
                started += 1
                status, payload = await self.forward(line["body"])
            rec = {"id": new_id("batch_req"), "custom_id": line["custom_id"],
                   "response": {"status_code": status, "request_id": new_id("req"),
                                "body": payload}, "error": None}
            (out if 200 <= status < 300 else err)[line["custom_id"]] = rec
            batch.counts["completed" if 200 <= status < 300 else "failed"] += 1

        work = [asyncio.ensure_future(one(line)) for line in requests]
        finished = asyncio.ensure_future(asyncio.gather(*work, return_exceptions=True))
        cancel = asyncio.ensure_future(batch.cancel.wait())
        # until every request is answered, the batch is cancelled or its window ends
        await asyncio.wait([finished, cancel], timeout=max(0.0, batch.deadline - time.time()),
                           return_when=asyncio.FIRST_COMPLETED)
        for t in (*work, cancel):
            t.cancel()
        await asyncio.gather(finished, cancel, return_exceptions=True)
        cancelled = batch.cancel.is_set()
        unfinished = [line["custom_id"] for line in requests
                      if line["custom_id"] not in out and line["custom_id"] not in err]
        code, message = (("batch_cancelled", "This request was cancelled with its batch.")
                         if cancelled else
                         ("batch_expired", "This request could not be executed before the "
                          "completion window expired."))
        for cid in unfinished:
            err[cid] = {"id": new_id("batch_req"), "custom_id": cid, "response": None,
                        "error": {"code": code, "message": message}}
        batch.move("finalizing")
        order = [line["custom_id"] for line in requests]
        if out:
            batch.output_file_id = self.add_file(_jsonl(out[c] for c in order if c in out),
                                                 f"{batch.id}_output.jsonl", "batch_output").id
        if err:
            batch.error_file_id = self.add_file(_jsonl(err[c] for c in order if c in err),
                                                f"{batch.id}_error.jsonl", "batch_output").id
        self.stats[f"batches_{'cancelled' if cancelled else 'expired' if unfinished else 'completed'}"] += 1
        batch.move("cancelled" if cancelled else "expired" if unfinished else "completed")

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.session is not None:
            await self.session.close()


def _jsonl(rows: Any) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)
