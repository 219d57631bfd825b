"""Run summary numbers for ``tickertag status`` and the end of ``tickertag demo``."""

from __future__ import annotations

import time

import redis

from common.ledger import RunLedger
from common.settings import Settings


def queue_depth(client: redis.Redis, queue: str) -> int:
    """Messages waiting in a Celery queue on the Redis broker (a Redis list per queue)."""
    return int(client.llen(queue))


def run_price_per_hour(ledger: RunLedger, settings: Settings) -> float:
    """$/h of what does a run's work: the compact model's host for a ``tag`` run (its batches
    go to the ``ner`` task), the LLM endpoint for annotation."""
    from common.task_names import queue_of

    task = ledger.task()
    return (settings.ner_price_per_hour if task and queue_of(task) == "ner"
            else settings.endpoint_price_per_hour)


def token_cost_usd(prompt_tokens: float, completion_tokens: float, settings: Settings) -> float:
    """What the LLM's tokens cost at the configured per-token prices."""
    return (prompt_tokens * settings.price_input_per_mtok
            + completion_tokens * settings.price_output_per_mtok) / 1e6


def run_token_cost_usd(stats: dict, settings: Settings) -> float:
    """What a run's LLM tokens cost: at the per-token prices, except the tokens a provider
    batch answered (``batch_prompt_tokens``, ``batch_completion_tokens``, a part of the run's
    totals), billed at ``batch_discount`` times those prices."""
    full = token_cost_usd(float(stats.get("prompt_tokens") or 0),
                          float(stats.get("completion_tokens") or 0), settings)
    batch = token_cost_usd(float(stats.get("batch_prompt_tokens") or 0),
                           float(stats.get("batch_completion_tokens") or 0), settings)
    return full - (1.0 - settings.batch_discount) * batch


def escalation_cost(stats: dict, pool_headlines: int, settings: Settings) -> dict:
    """An escalation run's LLM spend next to labelling the whole pool with the same LLM: the
    run's own mean tokens per answered headline, times the pool, at the same prices."""
    answered = int(stats.get("headlines_done") or 0) - int(stats.get("cache_hits") or 0)
    spent = run_token_cost_usd(stats, settings)
    per = spent / answered if answered > 0 else 0.0
    calls = int(stats.get("llm_calls") or 0)
    return {"pool_headlines": pool_headlines, "llm_calls": calls,
            "calls_share_of_pool": round(calls / pool_headlines, 4) if pool_headlines else None,
            "llm_cost_usd": round(spent, 6),
            "whole_pool_cost_usd": round(per * pool_headlines, 6),
            "usd_per_headline": round(per, 9)}


def run_summary(ledger: RunLedger, price_per_hour: float, now: float | None = None) -> dict:
    """Counters plus derived rates and cost; wall time runs from first enqueue to last finish."""
    s = ledger.stats()
    started = float(s.get("started_at") or 0)
    finished = float(s.get("last_finished_at") or 0)
    in_flight = int(s["batches_enqueued"]) - int(s["batches_finished"])
    end = (now or time.time()) if in_flight > 0 or not finished else finished
    wall = max(0.0, end - started) if started else 0.0
    done = int(s["headlines_done"])
    rate = done / wall if wall > 0 else 0.0
    cost = price_per_hour * wall / 3600
    return {
        **s,
        "batches_in_flight": in_flight,
        "headlines_pending": int(s["headlines_enqueued"]) - done - int(s["headlines_dead"]),
        "wall_s": round(wall, 2),
        "headlines_per_s": round(rate, 3),
        "tokens": int(s["prompt_tokens"]) + int(s["completion_tokens"]),
        "est_cost_usd": round(cost, 4),
        "price_per_hour": price_per_hour,
        "usd_per_million": round(price_per_hour / (rate * 3600) * 1e6, 2) if rate else None,
    }
