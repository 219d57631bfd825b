"""Calling the LLM: grammar-constrained chat completions with cache, global rate limit,
per-process concurrency cap, timeouts and jittered exponential backoff that honours
429/503 ``Retry-After`` (tenacity runs the attempts). Every response's rate-limit headers
lower the global limit to what the endpoint grants (``rate_headers.py``, ``rate_limit.py``).

The HTTP client (one pooled session per worker process and event loop) is ``client.py``.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import hashlib
import json
import random
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from huggingface_hub import AsyncInferenceClient
from huggingface_hub.errors import InferenceTimeoutError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from common import redis_keys
from common.settings import Settings
from workers.annotate.cache_writes import GroupedSets
from workers.annotate.client import PooledInferenceClient, response_headers
from workers.annotate.llm_schema import companies_schema, parse_answer, resolve_style, response_format
from workers.annotate.prompt import PROMPT_VERSION, build_messages
from workers.annotate.rate_limit import EndpointLimits, Permit

RETRIABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}

class LLMError(Exception):
    """A call that failed for good (after retries, or not worth retrying)."""

    def __init__(self, message: str, kind: str, status: int | None = None,
                 transient: bool = False) -> None:
        super().__init__(message)
        self.kind, self.status = kind, status
        self.transient = transient  # worth another attempt (while attempts are left)
        self.retry_after: float | None = None  # the server's Retry-After, seconds


@dataclass
class LLMAnswer:
    content: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False
    attempts: int = 1
    retries: int = 0
    seconds: float = 0.0
    rate_wait_s: float = 0.0


def retry_after_seconds(headers: Any) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date), if any."""
    if not headers:
        return None
    value = headers.get("Retry-After") or headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class LLMCaller:
    """Everything needed to turn one headline into one raw LLM answer, reliably."""

    def __init__(self, settings: Settings, redis_client: aioredis.Redis,
                 client: AsyncInferenceClient, semaphore: asyncio.Semaphore | None = None,
                 limits: EndpointLimits | None = None, writes: GroupedSets | None = None
                 ) -> None:
        """``limits`` and ``writes`` (the rate-limit gates, the grouped cache writes) may be
        shared by every batch of a process (``workers.annotate.batch``); by default they are
        this caller's own, over ``redis_client``."""
        self.s = settings
        self.r = redis_client
        self.client = client
        self.style = resolve_style(settings.response_format, settings.llm_base_url)
        self.schema = companies_schema(settings.max_companies)
        self.response_format = response_format(self.style, self.schema)
        self.limits = limits or EndpointLimits(
            redis_client, settings.llm_base_url, settings.rate_limit_rps, settings.rate_limit_tpm
        )
        self.writes = writes or GroupedSets(redis_client)
        self._key_head: str | None = None
        self._payload_tail: str | None = None
        self.sem = semaphore or asyncio.Semaphore(max(1, settings.concurrency))

    def cache_key(self, text: str) -> str:
        """Fingerprint of everything that determines the answer (as `datasets` fingerprints):
        the JSON of ``[model, prompt version, style, temperature, max tokens, schema, text]``.
        All but the text are the caller's own, so their JSON is written once (the schema's
        was most of the cost, twice per headline) and the text's appended: the same bytes,
        hence the same keys, as encoding the whole list each time."""
        if self._key_head is None:
            self._key_head = json.dumps(
                [self.s.llm_model, PROMPT_VERSION, self.style, self.s.temperature,
                 self.s.max_tokens, self.schema], sort_keys=True)[:-1] + ", "
        blob = self._key_head + json.dumps(text) + "]"
        return redis_keys.llm_cache(hashlib.sha256(blob.encode()).hexdigest())

    def request_payload(self, text: str) -> bytes:
        """``request_body`` as the JSON the online call sends (``"stream": false`` added), its
        constant part (model, sampling, the grammar's schema) encoded once per caller."""
        if self._payload_tail is None:
            rest = {k: v for k, v in self.request_body("").items() if k != "messages"}
            self._payload_tail = ", " + json.dumps({**rest, "stream": False})[1:]
        messages = ", ".join(_message_json(m["role"], m["content"]) for m in build_messages(text))
        return ('{"messages": [' + messages + "]" + self._payload_tail).encode()

    def request_body(self, text: str) -> dict[str, Any]:
        """The chat completion request for one headline: prompt, model, sampling and grammar.
        The online call sends it; the batch API (``workers.annotate.batch_api``) writes it as
        a line's ``body``, so both modes ask the very same question."""
        body: dict[str, Any] = {
            "messages": build_messages(text), "model": self.s.llm_model,
            "temperature": self.s.temperature, "max_tokens": self.s.max_tokens,
        }
        if self.response_format is not None:
            body["response_format"] = self.response_format
        return body

    async def remember(self, text: str, ans: LLMAnswer) -> None:
        """Cache a usable answer. An invalid or empty one may be a transient fault (a cut
        stream, an overloaded server): caching it would hand the same bad answer to every
        rerun and requeue for the cache's lifetime."""
        if parse_answer(ans.content)[0] is not None:
            await self.writes.set(self.cache_key(text), json.dumps(
                {"content": ans.content, "pt": ans.prompt_tokens, "ct": ans.completion_tokens}),
                self.s.cache_ttl_s)

    async def _send(self, text: str, permit: Permit) -> tuple[str, int, int]:
        """``_call``, then what the response (an error included) says the endpoint grants."""
        seen: dict[str, str] = {}
        token = response_headers.set(seen)
        try:
            return await self._call(text)
        finally:
            response_headers.reset(token)
            if seen:
                await self.limits.learn(seen, permit)

    async def _call(self, text: str) -> tuple[str, int, int]:
        if isinstance(self.client, PooledInferenceClient):
            out = await self.client.complete_chat(self.request_body(text),
                                                  self.request_payload(text))
            usage = out.get("usage") or {}
            return (out["choices"][0]["message"].get("content") or "",
                    usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0)
        answer = await self.client.chat_completion(**self.request_body(text))
        content = answer.choices[0].message.content or ""
        usage = getattr(answer, "usage", None)
        return (content, getattr(usage, "prompt_tokens", 0) or 0,
                getattr(usage, "completion_tokens", 0) or 0)

    def _backoff(self, attempt: int) -> float:
        cap = min(self.s.backoff_max_s, self.s.backoff_base_s * 2**attempt)
        return random.uniform(cap / 2, cap)  # jitter: retries from many workers spread out

    async def cached(self, texts: list[str]) -> dict[str, LLMAnswer]:
        """Cached answers for a whole batch in one round trip."""
        if not texts:
            return {}
        hits = await self.r.mget([self.cache_key(t) for t in texts])
        out = {}
        for t, hit in zip(texts, hits, strict=True):
            if hit:
                d = json.loads(hit)
                out[t] = LLMAnswer(d["content"], d["pt"], d["ct"], cached=True, attempts=0)
        return out

    async def call(self, text: str) -> LLMAnswer:
        """Ask the endpoint (no cache lookup), then cache the answer.

        The whole attempt loop holds one slot of the concurrency cap, so the number of
        in-flight requests, Redis round trips and sockets stays bounded however large the batch.
        """
        async with self.sem:
            return await self._call_with_retries(text)

    def _wait(self, state: RetryCallState) -> float:
        """The jittered backoff of the attempt that failed, at least its Retry-After."""
        err = state.outcome.exception() if state.outcome else None
        delay = getattr(err, "retry_after", None) or 0.0
        return min(self.s.backoff_max_s, max(self._backoff(state.attempt_number - 1), delay))

    async def _call_with_retries(self, text: str) -> LLMAnswer:
        """Up to ``max_retries`` retries (tenacity) of a transient failure (a retriable HTTP
        status, a timeout, a connection error); any other HTTP status fails at once. Each
        attempt takes its own rate-limit permit."""
        est_tokens = (len(build_messages(text)[0]["content"]) + len(text)) // 4 + 64
        t0 = time.perf_counter()
        waited = 0.0
        retrying = AsyncRetrying(stop=stop_after_attempt(self.s.max_retries + 1), wait=self._wait,
                                 retry=retry_if_exception(lambda e: isinstance(e, LLMError) and e.transient),
                                 reraise=True)
        try:
            async for attempt in retrying:
                with attempt:
                    n = attempt.retry_state.attempt_number
                    permit = await self.limits.acquire(est_tokens)
                    waited += permit.waited
                    content, pt, ct = await self._attempt(text, permit)
                    ans = LLMAnswer(content, pt, ct, attempts=n, retries=n - 1,
                                    seconds=time.perf_counter() - t0, rate_wait_s=waited)
                    await self.remember(text, ans)  # only a usable answer is final
                    return ans
        except LLMError as e:
            if e.transient:
                e.args = (f"{e.args[0]} (after {self.s.max_retries + 1} attempts)",)
            raise
        raise AssertionError("unreachable: tenacity returns or raises")

    async def _attempt(self, text: str, permit: Permit) -> tuple[str, int, int]:
        """One request; its failures as :class:`LLMError` (``transient`` says whether to retry,
        ``retry_after`` carries the server's Retry-After)."""
        try:
            return await self._send(text, permit)
        except aiohttp.ClientResponseError as e:
            err = LLMError(f"HTTP {e.status}: {e.message}", "http", e.status)
            err.transient = e.status in RETRIABLE_STATUS
            err.retry_after = retry_after_seconds(e.headers)
            raise err from None
        except (TimeoutError, InferenceTimeoutError):
            raise LLMError(f"timed out after {self.s.request_timeout_s:g}s", "timeout",
                           transient=True) from None
        except aiohttp.ClientError as e:
            raise LLMError(f"{type(e).__name__}: {e}", "connection", transient=True) from None


@functools.lru_cache(maxsize=8)
def _message_json(role: str, content: str) -> str:
    """One chat message as JSON. Cached because the system prompt (1.7 kB) is the same in
    every request and took most of a request's encoding time; used on every call, it stays
    the most recent entry while the headlines' messages pass through."""
    return json.dumps({"role": role, "content": content})
