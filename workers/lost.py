"""Send again the batches the broker lost: counted in flight, yet in no queue, not unacked, not
running and not finished.

Why: kombu's Redis transport moves a message from its queue to the ``unacked`` hash in two
steps (``BRPOP``, then ``HSET``). A worker SIGKILLed between them, or a Redis crash between them,
loses the message for good: no visibility timeout brings it back. The CI soak found it (a
restored message popped by a worker killed the same instant: 50 headlines in flight forever).
Each sent batch keeps a copy in the ledger (``RunLedger.sent``) until it finishes; this sweep
compares those copies with one atomic snapshot of the broker and re-sends a batch it has seen
missing on two sweeps ``grace_s`` apart (a message between ``BRPOP`` and ``HSET`` is there again
milliseconds later). A copy sent twice by mistake costs nothing: the batch lease lets one copy
run and the finished set skips the other (``workers.batch_task``).

The same sweep sends a finished run's curate message when the process that finalized the run
died before publishing it (``RunLedger.unsent_for``), once ``CURATE_GRACE_S`` has passed: longer
than a publish may keep retrying through a Redis outage (``common.outage``), so a slow publish
is not doubled.

Workers run the sweep in the background (``workers.lost_sweeper``), one at a time cluster-wide;
it sends with ``common.publish.send_batch``, as the producer does, so no worker imports the
producer.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import redis
from celery import Celery

from common import redis_keys
from common.ledger import RunLedger
from common.publish import publish, send_batch
from common.task_names import ANNOTATE_TASK, CURATE_TASK, queue_of

# kombu's Redis transport: one list per queue and priority step (priority 0 is the bare name)
PRIORITY_SEP = "\x06\x16"
PRIORITY_STEPS = (0, 3, 6, 9)
DEFAULT_UNACKED_KEY = "unacked"
CURATE_GRACE_S = 300.0


def queue_keys(queue: str) -> list[str]:
    return [queue if p == 0 else f"{queue}{PRIORITY_SEP}{p}" for p in PRIORITY_STEPS]


def _batch_of(message: dict) -> tuple[str, str] | None:
    """(run id, batch id) of one broker message of a batch task, else None."""
    try:
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        return str(args[0]), str(args[1])
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def broker_batches(client: redis.Redis, queues: Iterable[str],
                   unacked_key: str = DEFAULT_UNACKED_KEY) -> set[tuple[str, str]]:
    """Every (run, batch) with a message waiting in ``queues`` or delivered and not yet acked,
    read in one MULTI so a message moving between a queue and ``unacked`` is seen once."""
    pipe = client.pipeline(transaction=True)
    for q in sorted(set(queues)):
        for key in queue_keys(q):
            pipe.lrange(key, 0, -1)
    pipe.hvals(unacked_key)
    *lists, unacked = pipe.execute()
    found: set[tuple[str, str]] = set()
    for raw in [m for lst in lists for m in lst]:
        try:
            b = _batch_of(json.loads(raw))
        except ValueError:
            continue
        if b:
            found.add(b)
    for raw in unacked:
        try:
            b = _batch_of(json.loads(raw)[0])
        except (ValueError, IndexError, TypeError):
            continue
        if b:
            found.add(b)
    return found


@dataclass
class SweepReport:
    resent: list[str] = field(default_factory=list)  # batch ids sent again
    missing: list[str] = field(default_factory=list)  # seen missing once: checked next sweep
    cleaned: int = 0  # copies of batches that had finished
    curate_sent: bool = False  # the finished run's curate message, its finalizer gone


def sweep_run(app: Celery, ledger: RunLedger, grace_s: float, now: float | None = None,
              unacked_key: str = DEFAULT_UNACKED_KEY) -> SweepReport:
    """One pass over one run's in-flight copies; see the module docstring."""
    rep = SweepReport()
    copies = ledger.inflight_copies()
    if not copies:
        return rep
    now = time.time() if now is None else now
    present = broker_batches(ledger.r, {queue_of(c.get("task") or ANNOTATE_TASK)
                                        for c in copies.values()}, unacked_key)
    for bid, rec in copies.items():
        if ledger.is_finished(bid):
            ledger.drop_inflight(bid)
            rep.cleaned += 1
            continue
        there = ((ledger.run_id, bid) in present
                 or ledger.r.exists(redis_keys.batch_lease(ledger.run_id, bid)))
        if there:
            if "missing_since" in rec:
                rec.pop("missing_since")
                ledger.mark_inflight(bid, rec)
            continue
        since = rec.get("missing_since")
        if since is None:
            rec["missing_since"] = now
            ledger.mark_inflight(bid, rec)
            rep.missing.append(bid)
            continue
        if now - float(since) < grace_s:
            rep.missing.append(bid)
            continue
        task = rec.get("task") or ANNOTATE_TASK
        send_batch(app, ledger.run_id, bid, rec["headlines"], task, rec.get("kwargs") or {})
        rec.pop("missing_since")
        rec["resent_at"], rec["resends"] = now, int(rec.get("resends", 0)) + 1
        ledger.mark_inflight(bid, rec)
        ledger.count("resent_lost", 1)
        rep.resent.append(bid)
    return rep


def send_unsent_curation(app: Celery, ledger: RunLedger, now: float | None = None) -> bool:
    """Send the curate message of a run finalized more than ``CURATE_GRACE_S`` ago whose
    finalizer never marked it sent; True if sent."""
    late = ledger.unsent_for(now)
    if late is None or late < CURATE_GRACE_S:
        return False
    publish(app, CURATE_TASK, [ledger.run_id])
    ledger.curation_sent()
    return True


def sweep_all(app: Celery, client: redis.Redis, grace_s: float,
              unacked_key: str = DEFAULT_UNACKED_KEY) -> dict[str, SweepReport]:
    """``sweep_run`` over every run (one without in-flight copies costs one ``HGETALL``)."""
    out: dict[str, SweepReport] = {}
    for run_id in sorted(client.smembers(redis_keys.RUNS)):
        run_id = run_id.decode() if isinstance(run_id, bytes) else run_id
        ledger = RunLedger(client, run_id)
        rep = sweep_run(app, ledger, grace_s, unacked_key=unacked_key)
        rep.curate_sent = send_unsent_curation(app, ledger)
        if rep.resent or rep.missing or rep.cleaned or rep.curate_sent:
            out[run_id] = rep
    return out
