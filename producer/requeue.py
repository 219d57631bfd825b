"""Send dead letters back to the annotate queue (``tickertag requeue``).

A requeued batch gets a new id (``<old>-r<n>``) so it is not mistaken for the finished
original; the dead letter is moved to ``dead/requeued/`` only after the send succeeded.

Several requeues of one run may run at once (two operators, a script and a person): each dead
letter is claimed in Redis before it is read and sent, and a letter that is gone once claimed
was sent by another requeue. So every letter is sent once in total and each requeue reports
only what it sent itself.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from celery import Celery

from common.ledger import RunLedger
from common.publish import send_batch
from common.run import Run
from common.settings import Settings
from common.store import ResultStore
from common.task_names import ANNOTATE_TASK

_GEN = re.compile(r"^(.*)-r(\d+)$")


def next_requeue_id(bid: str) -> str:
    m = _GEN.match(bid)
    return f"{m.group(1)}-r{int(m.group(2)) + 1}" if m else f"{bid}-r1"


def requeue_dead(app: Celery, settings: Settings, run_id: str,
                 error_type: str | None = None) -> tuple[int, int]:
    """Re-send every dead letter of a run (optionally one error type); returns (batches,
    headlines) that this call sent, not counting letters another requeue took."""
    run = Run(run_id, settings)
    store, ledger = run.store, run.ledger
    token = uuid.uuid4().hex
    batches = headlines = 0
    for bid in store.dead_ids():
        sent = _requeue_claimed(app, store, ledger, bid, token, error_type)
        if sent is not None:
            batches += 1
            headlines += sent
    return batches, headlines


def _requeue_claimed(app: Celery, store: ResultStore, ledger: RunLedger, bid: str, token: str,
                     error_type: str | None) -> int | None:
    """Requeue one dead letter if this call wins its claim; its headline count, or None when
    another requeue holds (or already sent) it or its error type was not asked for.

    The letter is read only after the claim: read before, a letter another requeue sent and
    moved in between would be sent a second time from the stale copy.
    """
    if not ledger.claim_dead(bid, token):
        return None
    try:
        entry = store.read_dead(bid)
        if entry is None or (error_type and entry.get("error_type") != error_type):
            return None
        _send_again(app, store, ledger, entry)
        return len(entry["headlines"])
    finally:
        ledger.release_dead(bid, token)


def _send_again(app: Celery, store: ResultStore, ledger: RunLedger, entry: dict[str, Any]) -> None:
    """Send a dead letter as a new batch, count it, and move the letter aside (in that order,
    so a crash before the move leaves the letter for the next requeue)."""
    old, items = entry["batch_id"], entry["headlines"]
    new = next_requeue_id(old)
    task = entry.get("task") or ANNOTATE_TASK
    send_batch(app, ledger.run_id, new, items, task, entry.get("kwargs"))
    # counts the new batch, once even if re-run, and keeps its copy for the lost-batch sweep
    ledger.requeued(old, len(items), new,
                    {"task": task, "kwargs": entry.get("kwargs") or {}, "headlines": items})
    store.mark_requeued(old)
