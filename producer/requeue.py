"""Send dead letters back to the annotate queue (``tickertag requeue``).

A requeued batch gets a new id (``<old>-r<n>``) so it is not mistaken for the finished
original; the dead letter is moved to ``dead/requeued/`` only after the send succeeded.
"""

from __future__ import annotations

import re

from celery import Celery

from common.ledger import RunLedger
from common.settings import Settings
from common.store import ResultStore
from common.task_names import ANNOTATE_TASK
from producer.produce import send_batch

_GEN = re.compile(r"^(.*)-r(\d+)$")


def next_requeue_id(bid: str) -> str:
    m = _GEN.match(bid)
    return f"{m.group(1)}-r{int(m.group(2)) + 1}" if m else f"{bid}-r1"


def requeue_dead(app: Celery, settings: Settings, run_id: str,
                 error_type: str | None = None) -> tuple[int, int]:
    """Re-send every dead letter of a run (optionally one error type); returns (batches, headlines)."""
    store = ResultStore(settings.results_dir, run_id)
    ledger = RunLedger.from_url(settings.redis_dsn(), run_id)
    batches = headlines = 0
    for entry in list(store.iter_dead()):
        if error_type and entry.get("error_type") != error_type:
            continue
        old, items = entry["batch_id"], entry["headlines"]
        new = next_requeue_id(old)
        task = entry.get("task") or ANNOTATE_TASK
        send_batch(app, run_id, new, items, task, entry.get("kwargs"))
        # counts the new batch, once even if re-run, and keeps its copy for the lost-batch sweep
        ledger.requeued(old, len(items), new,
                        {"task": task, "kwargs": entry.get("kwargs") or {}, "headlines": items})
        store.mark_requeued(old)
        batches += 1
        headlines += len(items)
    return batches, headlines
