"""Every Redis key tickertag writes, built in one place.

Why: the prefix and the shape of each key are a contract between processes on different hosts
(producer, workers, CLI, tests); written as literals in several modules they drift. All keys
start with ``PREFIX`` so one ``SCAN tt:*`` finds everything tickertag owns in a shared Redis.
"""

from __future__ import annotations

PREFIX = "tt"
RUNS = f"{PREFIX}:runs"  # the set of run ids


def run(run_id: str) -> str:
    """Root of one run's keys (stats, finished, dead, pending, deliveries, ...)."""
    return f"{PREFIX}:run:{run_id}"


def batch_lease(run_id: str, batch_id: str) -> str:
    return f"{run(run_id)}:lease:{batch_id}"


def llm_cache(fingerprint: str) -> str:
    return f"{PREFIX}:cache:{fingerprint}"


def rate_limit(endpoint: str, what: str) -> str:
    return f"{PREFIX}:ratelimit:{endpoint}:{what}"


def train_run(run_id: str) -> str:
    """A training job's progress hash (its lock is ``train_run(id) + ":lock"``)."""
    return f"{PREFIX}:train:{run_id}"
