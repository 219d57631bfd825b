"""Refuse a Redis that may evict the broker's queues or the run ledger.

Why: with ``maxmemory`` set and an eviction policy other than ``noeviction``, Redis under memory
pressure deletes keys to make room: a queued batch, an unacked message or a ledger counter can
vanish without an error, and headlines are lost silently. ``noeviction`` makes Redis refuse
writes instead, which the producer and workers see and retry.
"""

from __future__ import annotations

import redis


class UnsafeRedis(RuntimeError):
    """The Redis configuration can lose queued work."""


def check_no_eviction(client: redis.Redis) -> None:
    """Raise ``UnsafeRedis`` when ``maxmemory`` is set with an evicting policy. A managed Redis
    that hides ``CONFIG GET`` is trusted (its provider's docs must say noeviction)."""
    try:
        cfg = client.config_get("maxmemory*")
    except redis.ResponseError:
        return
    maxmemory = int(cfg.get("maxmemory", 0) or 0)
    policy = str(cfg.get("maxmemory-policy", "noeviction"))
    if maxmemory and policy != "noeviction":
        raise UnsafeRedis(
            f"Redis has maxmemory {maxmemory} with maxmemory-policy {policy}: under memory "
            "pressure it would evict queued batches and the run ledger. Set "
            "`maxmemory-policy noeviction` (or maxmemory 0) on the broker.")
