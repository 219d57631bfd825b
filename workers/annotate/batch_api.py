"""Asking the LLM through a provider's Batch API (``TICKERTAG_LLM_MODE=batch``).

Why: a provider answers a batch within its completion window (24 h) at about half the
per-token price. One annotate task's headlines become one remote batch: an input file with one
chat completion request per headline (``custom_id`` = headline id, ``body`` =
``LLMCaller.request_body``: the prompt, grammar and sampling of the online mode), uploaded to
``/v1/files``, submitted to ``/v1/batches``, polled, and its output and error files read back.
The answers then go the online mode's way: parsed, aligned and stored by
``workers.annotate.batch``, cached by ``LLMCaller.remember``.

Never dropped: a headline the batch did not answer (it expired or was cancelled part done, it
failed validation, a request failed) is asked online at the full price
(``batch_fallback=online``) or becomes a dead letter of type ``batch`` (``dead``), and the
outcome counts how many (``batch_missing``, ``batch_online``).

Never submitted twice: the remote ids are in the run's ledger (meta field ``batch_api:<task
batch id>``) before anything waits on them. A worker killed while polling leaves the task
unacknowledged; its next copy finds the batch id and polls the same remote batch. A copy killed
between creating the batch and writing its id finds it again by its metadata (run and task
batch ids) before creating one.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp

from common.batch_jobs import CHAT_ENDPOINT, TERMINAL
from common.ledger import RunLedger
from common.records import Headline
from common.settings import Settings
from workers.annotate.client import endpoint_token
from workers.annotate.llm import RETRIABLE_STATUS, LLMAnswer, LLMCaller, LLMError

T = TypeVar("T")
META_PREFIX = "batch_api:"


class BatchAPIError(Exception):
    """The Batch API refused or kept failing; the task retries and resumes the same batch."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


# -- the run's record of its remote batches --------------------------------------------------
def remote_record(ledger: RunLedger, bid: str) -> dict[str, Any]:
    raw = ledger.r.hget(f"{ledger.k}:meta", META_PREFIX + bid)
    return json.loads(raw) if raw else {}


def save_remote(ledger: RunLedger, bid: str, record: dict[str, Any]) -> None:
    ledger.set_meta(**{META_PREFIX + bid: json.dumps({**record, "updated_at": time.time()})})


def remote_batches(meta: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Every remote batch of a run (from ``RunLedger.meta``), by task batch id."""
    return {k.removeprefix(META_PREFIX): json.loads(v) for k, v in meta.items()
            if k.startswith(META_PREFIX)}


def run_mode(ledger: RunLedger, settings: Settings) -> str:
    """The run's LLM mode as its producer set it; the worker's setting for a run without one."""
    return ledger.meta().get("llm_mode") or settings.llm_mode


# -- the HTTP client -------------------------------------------------------------------------
class BatchAPI:
    """The four calls of a provider's Batch API the worker needs, with retries."""

    def __init__(self, settings: Settings, session: aiohttp.ClientSession) -> None:
        self.s, self.session = settings, session
        self.base = (settings.batch_base_url or settings.llm_base_url).rstrip("/")
        token = endpoint_token(settings)
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def _retrying(self, what: str, fn: Callable[[], Awaitable[T]]) -> T:
        for attempt in range(self.s.max_retries + 1):
            try:
                return await fn()
            except aiohttp.ClientResponseError as e:
                if e.status not in RETRIABLE_STATUS or attempt == self.s.max_retries:
                    raise BatchAPIError(f"{what}: HTTP {e.status}: {e.message}",
                                        e.status) from None
            except (aiohttp.ClientError, TimeoutError) as e:
                if attempt == self.s.max_retries:
                    raise BatchAPIError(f"{what}: {type(e).__name__}: {e}") from None
            cap = min(self.s.backoff_max_s, self.s.backoff_base_s * 2**attempt)
            await asyncio.sleep(random.uniform(cap / 2, cap))
        raise AssertionError("unreachable")

    async def _json(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        async with self.session.request(method, self.base + path, headers=self.headers,
                                        raise_for_status=True, **kw) as resp:
            return await resp.json(content_type=None)

    async def upload(self, content: bytes, filename: str) -> str:
        def form() -> aiohttp.FormData:
            f = aiohttp.FormData()
            f.add_field("purpose", "batch")
            f.add_field("file", content, filename=filename, content_type="application/jsonl")
            return f

        out = await self._retrying("upload", lambda: self._json("POST", "/v1/files",
                                                                data=form()))
        return str(out["id"])

    async def create(self, file_id: str, metadata: dict[str, str]) -> dict[str, Any]:
        body = {"input_file_id": file_id, "endpoint": CHAT_ENDPOINT,
                "completion_window": self.s.batch_completion_window, "metadata": metadata}
        return await self._retrying("create", lambda: self._json("POST", "/v1/batches",
                                                                 json=body))

    async def retrieve(self, batch_id: str) -> dict[str, Any] | None:
        """The batch's state; None when the provider does not know the id (404)."""
        try:
            return await self._retrying("retrieve", lambda: self._json(
                "GET", f"/v1/batches/{batch_id}"))
        except BatchAPIError as e:
            if e.status == 404:
                return None
            raise

    async def find(self, metadata: dict[str, str]) -> dict[str, Any] | None:
        """The newest batch created with ``metadata`` (a copy that died before noting its id)."""
        page = await self._retrying("list", lambda: self._json(
            "GET", "/v1/batches", params={"limit": "100"}))
        return next((b for b in page.get("data", [])
                     if all((b.get("metadata") or {}).get(k) == v for k, v in metadata.items())),
                    None)

    async def content(self, file_id: str) -> bytes:
        async def get() -> bytes:
            async with self.session.get(f"{self.base}/v1/files/{file_id}/content",
                                        headers=self.headers, raise_for_status=True) as resp:
                return await resp.read()

        return await self._retrying("download", get)


# -- files -----------------------------------------------------------------------------------
def input_file(headlines: list[Headline], caller: LLMCaller) -> bytes:
    """The batch input: one chat completion request per headline, keyed by headline id."""
    return b"".join(json.dumps({"custom_id": h.id, "method": "POST", "url": CHAT_ENDPOINT,
                                "body": caller.request_body(h.text)}).encode() + b"\n"
                    for h in headlines)


def read_output(content: bytes) -> tuple[dict[str, LLMAnswer], dict[str, str]]:
    """An output or error file: the answers by custom id, and why each other request failed."""
    answers: dict[str, LLMAnswer] = {}
    failed: dict[str, str] = {}
    for raw in content.splitlines():
        if not raw.strip():
            continue
        line = json.loads(raw)
        cid, resp, err = line.get("custom_id"), line.get("response") or {}, line.get("error")
        status = resp.get("status_code")
        if err or status is None or not 200 <= int(status) < 300:
            body_err = (resp.get("body") or {}).get("error") if isinstance(resp.get("body"),
                                                                           dict) else None
            why = (err or {}).get("code") or (f"HTTP {status}" if status else "no response")
            msg = (err or body_err or {}).get("message", "")
            failed[str(cid)] = f"{why}: {msg}"[:300] if msg else why
            continue
        body = resp["body"]
        usage = body.get("usage") or {}
        content_text = (body["choices"][0]["message"].get("content") or "")
        answers[str(cid)] = LLMAnswer(content_text, int(usage.get("prompt_tokens") or 0),
                                      int(usage.get("completion_tokens") or 0))
    return answers, failed


# -- one task's batch ------------------------------------------------------------------------
class RemoteBatch:
    """One task batch's remote batch: submitted once, polled until it ends, read back."""

    def __init__(self, api: BatchAPI, ledger: RunLedger, bid: str, settings: Settings) -> None:
        self.api, self.ledger, self.bid, self.s = api, ledger, bid, settings
        self.record: dict[str, Any] = {}
        self.why_not = "no line for it in the output or error file"

    async def _save(self, **changes: Any) -> None:
        self.record.update(changes)
        await asyncio.to_thread(save_remote, self.ledger, self.bid, self.record)

    def _metadata(self) -> dict[str, str]:
        return {"tickertag_run": self.ledger.run_id, "tickertag_batch": self.bid}

    async def submit_or_resume(self, headlines: list[Headline], caller: LLMCaller
                               ) -> dict[str, Any] | None:
        """The remote batch for these headlines: the one the ledger names, else a new one."""
        self.record = await asyncio.to_thread(remote_record, self.ledger, self.bid)
        if self.record.get("batch"):
            await self._save(resumed=int(self.record.get("resumed", 0)) + 1)
            return await self.api.retrieve(self.record["batch"])
        if not self.record.get("file"):
            file_id = await self.api.upload(input_file(headlines, caller),
                                            f"{self.ledger.run_id}-{self.bid}.jsonl")
            await self._save(file=file_id, requests=len(headlines), status="uploaded")
        else:  # a copy died between upload and noting the batch: it may have created it
            found = await self.api.find(self._metadata())
            if found:
                await self._save(batch=found["id"], status=found["status"])
                return found
        job = await self.api.create(self.record["file"], self._metadata())
        await self._save(batch=job["id"], status=job["status"])
        return job

    async def wait(self, job: dict[str, Any] | None) -> dict[str, Any] | None:
        """Poll until the batch ends, noting each change of state in the ledger."""
        while job is not None and job["status"] not in TERMINAL:
            counts = job.get("request_counts") or {}
            if (job["status"], counts.get("completed"), counts.get("failed")) != (
                    self.record.get("status"), self.record.get("completed"),
                    self.record.get("failed")):
                await self._save(status=job["status"], completed=counts.get("completed", 0),
                                 failed=counts.get("failed", 0))
            await asyncio.sleep(self.s.batch_poll_s)
            job = await self.api.retrieve(job["id"])
        return job

    async def answers(self, job: dict[str, Any] | None) -> tuple[dict[str, LLMAnswer],
                                                                 dict[str, str]]:
        """What the ended batch answered, and why it did not answer the rest it was sent."""
        if job is None:
            self.why_not = f"the provider does not know batch {self.record.get('batch')}"
            await self._save(status="lost")
            return {}, {}
        answers: dict[str, LLMAnswer] = {}
        failed: dict[str, str] = {}
        for file_id in (job.get("output_file_id"), job.get("error_file_id")):
            if file_id:
                a, f = read_output(await self.api.content(file_id))
                answers.update(a)
                failed.update(f)
        errs = (job.get("errors") or {}).get("data") or []
        if errs:  # a batch that failed validation ran nothing: why, for every headline
            self.why_not = "; ".join(str(e.get("message", "")) for e in errs[:3])[:300]
        counts = job.get("request_counts") or {}
        await self._save(status=job["status"], completed=counts.get("completed", 0),
                         failed=counts.get("failed", 0), answered=len(answers))
        return answers, failed


async def ask_batch_api(caller: LLMCaller, headlines: list[Headline], settings: Settings,
                        ledger: RunLedger, bid: str
                        ) -> tuple[dict[str, LLMAnswer | LLMError], dict[str, float]]:
    """Answers (or the final error) for every one of ``headlines``, by id, through one remote
    batch, and the batch counters for the outcome. Unanswered ones take ``batch_fallback``."""
    if not headlines:
        return {}, {}
    timeout = aiohttp.ClientTimeout(total=max(60.0, settings.request_timeout_s))
    async with aiohttp.ClientSession(timeout=timeout) as session:
        remote = RemoteBatch(BatchAPI(settings, session), ledger, bid, settings)
        job = await remote.wait(await remote.submit_or_resume(headlines, caller))
        got, why = await remote.answers(job)
    out: dict[str, LLMAnswer | LLMError] = {}
    missing: list[Headline] = []
    for h in headlines:
        ans = got.get(h.id)
        if ans is None:
            missing.append(h)
            continue
        await caller.remember(h.text, ans)
        out[h.id] = ans
    counts: dict[str, float] = {
        "batch_requests": len(headlines), "batch_answered": len(out),
        "batch_missing": len(missing),
        "batch_prompt_tokens": sum(a.prompt_tokens for a in out.values()
                                   if isinstance(a, LLMAnswer)),
        "batch_completion_tokens": sum(a.completion_tokens for a in out.values()
                                       if isinstance(a, LLMAnswer)),
    }
    status = job["status"] if job else "lost"
    if settings.batch_fallback == "online":

        async def online(h: Headline) -> LLMAnswer | LLMError:
            try:
                return await caller.call(h.text)
            except LLMError as e:
                return e

        asked = await asyncio.gather(*(online(h) for h in missing))
        out.update({h.id: a for h, a in zip(missing, asked, strict=True)})
        counts["batch_online"] = len(missing)
    else:
        for h in missing:
            out[h.id] = LLMError(f"not answered by remote batch {status}: "
                                 f"{why.get(h.id, remote.why_not)}", "batch")
    return out, counts
