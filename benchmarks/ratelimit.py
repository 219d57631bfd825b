"""Rate-limit benchmark: how close to its configured rate does the shared Redis token bucket run?

The tests check that the limit is honoured by counting (never more than capacity + rate x t
requests in any t seconds, a 429's Retry-After waited out); how fast the bucket actually lets
requests through on this machine is measured here. Several "workers" (each its own Redis
connection, as separate processes would have) call ``RedisRateLimiter.acquire`` in a loop for a
few seconds; the table states the achieved rate as a share of the configured one (the reference,
the same in every run) with the absolute figures beside it, and the largest burst seen in any
one-second window against the bucket's bound.

Usage: python benchmarks/ratelimit.py [--seconds 5] [--workers 4] [--rates 4 20 100]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_REDIS = os.environ.get("TICKERTAG_BENCH_REDIS_URL", "redis://127.0.0.1:6379/10")

import redis.asyncio as aioredis  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from common.services import ensure_redis  # noqa: E402
from workers.annotate.rate_limit import RedisRateLimiter  # noqa: E402

LOGS = ROOT / "var" / "bench-logs"


async def _worker(key: str, rate: float, capacity: float, until: float, grants: list[float]) -> None:
    client = aioredis.Redis.from_url(BENCH_REDIS, decode_responses=True)
    limiter = RedisRateLimiter(client, key, rate, capacity)
    try:
        while time.monotonic() < until:
            await limiter.acquire()
            grants.append(time.monotonic())
    finally:
        await client.aclose()


def max_in_window(times: list[float], window: float) -> int:
    """The most grants that fall within any ``window`` seconds."""
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] < t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def one(rate: float, workers: int, seconds: float) -> dict:
    capacity = max(rate, 1.0)  # what EndpointLimits gives the requests/s bucket
    key = f"tt:bench:ratelimit:{uuid.uuid4().hex[:8]}"
    grants: list[float] = []

    async def go() -> None:
        until = time.monotonic() + seconds
        await asyncio.gather(*[_worker(key, rate, capacity, until, grants) for _ in range(workers)])

    t0 = time.monotonic()
    asyncio.run(go())
    grants.sort()
    # after the initial burst of `capacity`, the bucket admits `rate` per second
    steady = (len(grants) - capacity) / (grants[-1] - t0) if len(grants) > capacity else 0.0
    return {"rate": rate, "workers": workers, "granted": len(grants), "steady": steady,
            "ratio": steady / rate, "burst_1s": max_in_window(grants, 1.0),
            "bound_1s": capacity + rate}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--rates", type=float, nargs="+", default=[4.0, 20.0, 100.0])
    a = ap.parse_args()
    proc = ensure_redis(BENCH_REDIS, LOGS)
    try:
        rows = [one(r, a.workers, a.seconds) for r in a.rates]
    finally:
        if proc:
            proc.stop()
    t = Table(title=f"rate limit: {a.workers} workers sharing one bucket for {a.seconds:g} s, "
                    f"{os.cpu_count()} cores")
    for col in ("configured /s", "granted", "achieved /s (after burst)", "achieved / configured",
                "most in any 1 s", "bucket bound (cap + rate)"):
        t.add_column(col, justify="right")
    for r in rows:
        t.add_row(f"{r['rate']:g}", str(r["granted"]), f"{r['steady']:.2f}",
                  f"{r['ratio']:.3f}", str(r["burst_1s"]), f"{r['bound_1s']:g}")
    Console().print(t)


if __name__ == "__main__":
    main()
