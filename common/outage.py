"""Wait out a Redis outage instead of dying in it.

A producer spends hours feeding one run; Redis may restart (connection refused, AOF loading)
or go silent (a cut link, a paused host: each call ends in a socket timeout) in the middle.
Either is a pause, not an error: each Redis step of the producer's loop is retried until Redis
answers again, up to ``OUTAGE_S``, after which the error is the run's to report. redis-py's own
retry (three more tries) and kombu's publish retry end after a few socket timeouts, which a
cut link of 30 s outlasted (``benchmarks/multihost.py``'s outage killed the producer).

Steps given to ``outlast`` must be safe to repeat: a call whose reply was lost may have been
applied. The ledger's steps are (a claim finds its own pending batch again, ``sent`` counts a
batch once); a plain counter may count one batch twice, which only the report shows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import redis
from kombu.exceptions import OperationalError

T = TypeVar("T")

OUTAGE_S = 120.0  # how long a step waits for Redis before the outage is an error
TRANSIENT = (redis.ConnectionError, redis.TimeoutError, OperationalError)


def outlast(step: Callable[[], T], outage_s: float = OUTAGE_S, pause_s: float = 0.2,
            max_pause_s: float = 2.0) -> T:
    """``step()``, retried on a connection error or timeout until it has failed for
    ``outage_s`` seconds; the pause between tries doubles from ``pause_s`` to ``max_pause_s``."""
    down_since: float | None = None
    pause = pause_s
    while True:
        try:
            return step()
        except TRANSIENT:
            down_since = down_since or time.monotonic()
            if time.monotonic() - down_since > outage_s:
                raise
            time.sleep(pause)
            pause = min(2 * pause, max_pause_s)
