"""The ``annotate`` queue: one task = one batch of headlines -> LLM -> spans -> result shard.

Plain functions do the work (``annotate_headlines``, ``build_result``) and are tested without
Celery; the task only decodes its arguments, runs the batch and records the outcome. A batch's
outcome is written before the task is acknowledged (late acks), and keyed by batch id, so a
redelivered batch rewrites the same shard and is counted once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from celery.utils.log import get_task_logger

from common.celery_app import app
from common.ledger import RunLedger
from common.records import Headline
from common.run import Run
from common.settings import Settings
from common.spans import align_spans
from common.store import result_key
from common.task_names import ANNOTATE_TASK
from workers.annotate import aio
from workers.annotate.aio import process_semaphore
from workers.annotate.batch_api import ask_batch_api, run_mode
from workers.annotate.cache_writes import GroupedSets
from workers.annotate.client import endpoint_token, make_client
from workers.annotate.llm import LLMAnswer, LLMCaller, LLMError
from workers.annotate.llm_schema import parse_answer
from workers.annotate.prompt import PROMPT_VERSION
from workers.annotate.rate_limit import EndpointLimits
from workers.batch_task import Fence

log = get_task_logger(__name__)


@dataclass
class BatchOutcome:
    results: list[dict[str, Any]] = field(default_factory=list)
    failed: list[tuple[dict[str, Any], LLMError]] = field(default_factory=list)
    # counters of the batch API mode (``workers.annotate.batch_api``): requests, answered,
    # missing, asked online, tokens billed at the batch price
    extra: dict[str, float] = field(default_factory=dict)

    def counts(self) -> dict[str, float]:
        c: dict[str, float] = {
            "headlines_done": len(self.results),
            "with_companies": sum(1 for r in self.results if r["entities"]),
            "spans": sum(len(r["entities"]) for r in self.results),
            "invalid": sum(1 for r in self.results if not r["valid"]),
            "repaired": sum(1 for r in self.results if r["warning"]),
            "hallucinated": sum(len(r["hallucinated"]) for r in self.results),
            "headlines_dead": len(self.failed),
            "cache_hits": sum(1 for r in self.results if r["cached"]),
            "llm_calls": sum(r["attempts"] for r in self.results),
            "retries": sum(r["retries"] for r in self.results),
            "prompt_tokens": sum(r["usage"]["prompt_tokens"] for r in self.results
                                 if not r["cached"]),
            "completion_tokens": sum(r["usage"]["completion_tokens"] for r in self.results
                                     if not r["cached"]),
        }
        c["llm_seconds"] = float(round(sum(r["llm_seconds"] for r in self.results), 3))
        return {**c, **self.extra}


def build_result(h: Headline, ans: LLMAnswer, settings: Settings, style: str) -> dict[str, Any]:
    """One result record: spans aligned to the headline; an invalid answer keeps its raw text."""
    parsed, why, warning = parse_answer(ans.content)
    mentions = parsed.result if parsed else []
    aligned = align_spans(h.text, mentions)
    return {
        "key": result_key(h.id, settings.llm_model, PROMPT_VERSION),
        "id": h.id, "text": h.text, "date": h.date, "stock_symbol": h.stock_symbol,
        "entities": [s.model_dump(exclude={"score"}) for s in aligned.spans],
        "companies": mentions,
        "normalized": parsed.normalized_result if parsed else [],
        "hallucinated": aligned.hallucinated,
        "valid": parsed is not None,
        "invalid_reason": why,
        "warning": warning,
        "raw": None if parsed else ans.content,
        "model": settings.llm_model, "prompt_version": PROMPT_VERSION, "response_format": style,
        "usage": {"prompt_tokens": ans.prompt_tokens, "completion_tokens": ans.completion_tokens},
        "cached": ans.cached, "attempts": ans.attempts, "retries": ans.retries,
        "llm_seconds": round(ans.seconds, 4), "annotated_at": time.time(),
    }


@dataclass
class BatchClients:
    """What a batch talks through: Redis (response cache, rate-limit gates), the endpoint's
    HTTP client, the gates and the grouped cache writes over that Redis."""

    redis: aioredis.Redis
    http: Any  # workers.annotate.client.PooledInferenceClient
    limits: EndpointLimits
    writes: GroupedSets

    @classmethod
    def open(cls, settings: Settings) -> BatchClients:
        # A blocking pool: a burst waits for a connection instead of failing the batch.
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.redis_dsn(), decode_responses=True,
            max_connections=max(8, settings.concurrency), timeout=60)
        r = aioredis.Redis(connection_pool=pool)
        limits = EndpointLimits(r, settings.llm_base_url, settings.rate_limit_rps,
                                settings.rate_limit_tpm)
        return cls(r, make_client(settings), limits, GroupedSets(r))

    async def close(self) -> None:
        await self.http.close()
        await self.redis.aclose()


@asynccontextmanager
async def batch_clients(settings: Settings) -> AsyncIterator[BatchClients]:
    """The clients of the process loop, opened by its first batch and kept (their keep-alive
    connections serve every later batch); on a loop of the caller's own, clients opened for
    this batch and closed after it. Keyed by everything they are built from, so a batch with
    other settings gets its own."""
    key = ("annotate", settings.redis_dsn(), settings.concurrency, settings.llm_base_url,
           endpoint_token(settings), settings.request_timeout_s, settings.rate_limit_rps,
           settings.rate_limit_tpm)
    shared = aio.loop_shared(key, lambda: BatchClients.open(settings))
    if shared is not None:
        yield shared
        return
    own = BatchClients.open(settings)
    try:
        yield own
    finally:
        await own.close()


async def annotate_headlines(headlines: list[Headline], settings: Settings,
                             batch_api: tuple[RunLedger, str] | None = None) -> BatchOutcome:
    """Annotate a batch concurrently; per-headline failures are collected, not raised.

    In-flight requests are capped by the process-wide semaphore when run on the worker's
    process loop (``workers.annotate.aio``), so N batches in one worker share ``settings.concurrency``.
    ``batch_api`` (the run's ledger and this task's batch id): the uncached headlines are asked
    as one remote batch (``workers.annotate.batch_api``) instead of one call each.
    """
    async with batch_clients(settings) as c:
        caller = LLMCaller(settings, c.redis, c.http, process_semaphore(settings.concurrency),
                           limits=c.limits, writes=c.writes)
        hits = await caller.cached([h.text for h in headlines])
        asked: dict[str, LLMAnswer | LLMError] = {}
        extra: dict[str, float] = {}
        if batch_api is not None:
            asked, extra = await ask_batch_api(
                caller, [h for h in headlines if h.text not in hits], settings, *batch_api)

        async def one(h: Headline) -> dict[str, Any] | LLMError:
            try:
                ans = hits.get(h.text) or asked.get(h.id) or await caller.call(h.text)
                if isinstance(ans, LLMError):
                    return ans
                return build_result(h, ans, settings, caller.style)
            except LLMError as e:
                return e

        answers = await asyncio.gather(*(one(h) for h in headlines))
    out = BatchOutcome(extra=extra)
    for h, a in zip(headlines, answers, strict=True):
        if isinstance(a, LLMError):
            out.failed.append((h.model_dump(), a))
        else:
            out.results.append(a)
    return out


def run_batch(run_id: str, bid: str, headlines: list[dict], settings: Settings,
              fence: Fence | None = None) -> dict:
    """Annotate one batch and record its outcome exactly once (idempotent under redelivery).
    ``fence`` (from the batch task): asked before writing (False: another copy recorded or holds
    the batch, write nothing), and its lease fences the recording itself (``Run.record_batch``).
    Headlines whose calls failed for good become the batch's dead letter, the rest its shard:
    each headline ends in exactly one of the two."""
    run = Run(run_id, settings)
    if run.finished(bid):  # promoted here if its copy died first: the run may settle now
        run.maybe_finalize(app)
        return {"batch_id": bid, "skipped": "already finished"}
    if run.over_budget():  # no call past the budget; the batch waits as a dead letter
        if not run.record_batch(bid, [], {"headlines_dead": len(headlines)}, dead={
                "headlines": headlines, "error": f"budget: the run spent its "
                f"${settings.budget_usd:g} (TICKERTAG_BUDGET_USD)", "error_type": "budget",
                "attempts": 0, "task": ANNOTATE_TASK}, lease=getattr(fence, "lease", None)):
            return {"batch_id": bid, "skipped": "recorded by another copy"}
        return {"batch_id": bid, "dead": True, "error_type": "budget"}
    items = [Headline.model_validate(h) for h in headlines]
    via = (run.ledger, bid) if run_mode(run.ledger, settings) == "batch" else None
    outcome = aio.run(annotate_headlines(items, settings, via))
    if fence is not None and not fence():
        return {"batch_id": bid, "skipped": "recorded by another copy"}
    dead = None
    if outcome.failed:
        errs = {f"{e.kind}: {e}" for _, e in outcome.failed}
        dead = {"headlines": [h for h, _ in outcome.failed],
                "error": "; ".join(sorted(errs))[:2000],
                "error_type": outcome.failed[0][1].kind, "attempts": settings.max_retries + 1}
    counts = outcome.counts()
    if not run.record_batch(bid, outcome.results, counts, dead, getattr(fence, "lease", None)):
        return {"batch_id": bid, "skipped": "recorded by another copy"}
    run.maybe_finalize(app)
    return {"batch_id": bid, **counts}
