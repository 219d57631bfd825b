"""Send headlines to the annotate queue: validate, dedup, batch, backpressure, resume.

- Invalid source records are written to the run's ``rejected.jsonl`` with the record number
  and the field at fault; they never enter the queue. They are written every
  ``REJECTED_FLUSH_ROWS`` records, and the report keeps ``MAX_REJECTED_EXAMPLES`` of them, so a
  file of a million bad rows costs the producer no more memory than a file of a thousand.
- A headline already enqueued in this run (Redis) or already annotated (the result store, the
  durable truth if Redis was flushed) is skipped, so rerunning the producer is safe. The
  producer itself remembers only the ids of the batch it is filling: Redis's claim of each
  batch (``RunLedger.claim_batch``) catches a repeat from an earlier batch.
- At most ``max_batches_in_flight`` batches wait in the broker: a 900k-row source never floods
  Redis, and the producer's progress shows the real pace of the workers.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import redis
from celery import Celery

from common.outage import OUTAGE_S, outlast
from common.publish import send_batch
from common.records import InvalidRecord, make_headline
from common.run import Run
from common.settings import Settings
from common.store import batch_id
from common.task_names import ANNOTATE_TASK
from producer.sources import BAD_ROW, SOURCE_FIELDS, missing_title

MAX_REJECTED_EXAMPLES = 5  # rejections the report (and the CLI) shows; all are in rejected.jsonl
REJECTED_FLUSH_ROWS = 1000  # rejected records held before they are written and counted


@dataclass
class ProduceReport:
    rows: int = 0
    enqueued: int = 0
    batches: int = 0
    duplicates: int = 0
    already_done: int = 0
    rejected: int = 0
    resent_pending: int = 0
    budget_reached: bool = False  # stopped sending at TICKERTAG_BUDGET_USD; rerun to resume
    rejected_examples: list[str] = field(default_factory=list)  # the first few, at most 5


class Producer:
    """Streams rows into batches for one run."""

    def __init__(self, app: Celery, settings: Settings, run_id: str | None = None,
                 on_progress: Callable[[ProduceReport], None] | None = None,
                 task: str = ANNOTATE_TASK, task_kwargs: dict | None = None) -> None:
        """``task``: the annotate task by default; ``tickertag.ner.batch`` tags the same stream
        with a compact model instead, with the same dedup, backpressure and accounting."""
        self.app = app
        self.task, self.task_kwargs = task, task_kwargs or {}
        self.s = settings
        self.run_id = run_id or settings.run_id
        self.handle = Run(self.run_id, settings)  # ledger, store, finalize of the run
        self.ledger, self.store = self.handle.ledger, self.handle.store
        self.on_progress = on_progress
        self.report = ProduceReport()
        self.producer_id = uuid.uuid4().hex[:12]

    def _wait_for_room(self, outage_s: float = OUTAGE_S) -> None:
        """Block while the broker holds ``max_batches_in_flight`` batches.

        The producer spends most of a long run here, so this is where a Redis outage most
        often finds it; it is waited out (``common.outage``), as at every Redis step of the
        loop, instead of killing the producer and leaving the run unfinished.
        """
        while not outlast(self._has_room, outage_s):
            time.sleep(0.2)

    def _has_room(self) -> bool:
        self.ledger.producer_alive(self.producer_id)
        return self.ledger.in_flight() < self.s.max_batches_in_flight

    def _flush(self, buf: list[dict]) -> None:
        claimed = outlast(lambda: self.ledger.claim_batch(buf, batch_id))
        if claimed is None:
            self.report.duplicates += len(buf)
            return
        bid, new = claimed
        self.report.duplicates += len(buf) - len(new)
        self._wait_for_room()
        send_batch(self.app, self.run_id, bid, new, self.task, self.task_kwargs)
        if not outlast(lambda: self.ledger.sent(bid, len(new), self._copy(new))):
            return  # another producer re-sent this claimed batch while this one waited
        self.report.enqueued += len(new)
        self.report.batches += 1
        if self.on_progress:
            self.on_progress(self.report)

    def _copy(self, headlines: list[dict]) -> dict:
        """What the lost-batch sweep needs to send this batch again (``workers.lost``)."""
        return {"task": self.task, "kwargs": self.task_kwargs, "headlines": headlines}

    def resend_pending(self) -> None:
        """Re-send batches a previous producer claimed but may not have sent (idempotent)."""
        for bid, headlines in self.ledger.pending_batches().items():
            send_batch(self.app, self.run_id, bid, headlines, self.task, self.task_kwargs)
            if self.ledger.sent(bid, len(headlines), self._copy(headlines)):
                self.report.resent_pending += len(headlines)

    def run(self, rows: Iterable[dict[str, Any]], source_name: str = "source") -> ProduceReport:
        from common.redis_policy import check_no_eviction

        check_no_eviction(self.ledger.r)
        self.ledger.producer_alive(self.producer_id)
        try:
            return self._run(rows, source_name)
        finally:
            try:
                self.ledger.producer_done(self.producer_id)
                if self.task == ANNOTATE_TASK:  # this may have been the last producer
                    self.handle.maybe_finalize(self.app)
            except redis.RedisError:
                pass  # its heartbeat lapses by itself

    def _run(self, rows: Iterable[dict[str, Any]], source_name: str) -> ProduceReport:
        self.ledger.set_task(self.task)
        if self.task == ANNOTATE_TASK:  # workers follow the run's mode (online or batch API)
            self.ledger.set_meta(llm_mode=self.s.llm_mode)
        self.resend_pending()
        done = self.store.done_ids()
        seen: set[str] = set()  # ids in ``buf`` only: memory stays flat in the file's rows
        buf: list[dict] = []
        rejected: list[dict] = []
        for i, row in enumerate(rows, start=1):
            self.report.rows += 1
            try:
                if row.get(BAD_ROW):
                    raise InvalidRecord(f"{source_name}#{i}", "row", str(row[BAD_ROW]))
                h = make_headline(row, record=f"{source_name}#{i}")
            except InvalidRecord as e:
                rejected.append(self._rejection(e, row))
                if len(rejected) >= REJECTED_FLUSH_ROWS:
                    self._write_rejected(rejected)
                    rejected = []
                continue
            if h.id in seen:
                self.report.duplicates += 1
                continue
            if h.id in done:
                self.report.already_done += 1
                continue
            seen.add(h.id)
            buf.append(h.model_dump())
            if len(buf) >= self.s.batch_size:
                if self._over_budget():
                    break
                self._flush(buf)
                buf, seen = [], set()
        else:
            if buf and not self._over_budget():
                self._flush(buf)
        self._write_rejected(rejected)
        if not self.report.budget_reached:  # a run stopped by its budget is not complete
            outlast(self.ledger.mark_produced)
        return self.report

    def _over_budget(self) -> bool:
        """Whether the run's LLM spend reached ``budget_usd``: then nothing more is sent, and
        what is unsent is read again (and sent) by the next ``produce`` of the run."""
        if self.task != ANNOTATE_TASK or not outlast(self.handle.over_budget):
            return False
        self.report.budget_reached = True
        return True

    def _rejection(self, e: InvalidRecord, row: dict[str, Any]) -> dict[str, Any]:
        """Count a rejected record, keep it as an example while there are few, and return its
        ``rejected.jsonl`` line (field values cut to 500 characters)."""
        self.report.rejected += 1
        reason = e.reason
        if e.field == "title" and row.get(SOURCE_FIELDS) is not None:
            reason = f"{reason}: {missing_title(row[SOURCE_FIELDS])}"
        if len(self.report.rejected_examples) < MAX_REJECTED_EXAMPLES:
            self.report.rejected_examples.append(
                f"record {e.record}: field {e.field!r}: {reason}")
        return {"record": e.record, "field": e.field, "error": reason,
                "row": {k: None if v is None else str(v)[:500]
                        for k, v in row.items() if k != SOURCE_FIELDS}}

    def _write_rejected(self, rejected: list[dict]) -> None:
        """Append rejected records to ``rejected.jsonl``. A rerun reads the same bad records
        again: each is written and counted once per run (the ledger remembers which)."""
        records, token = [r["record"] for r in rejected], uuid.uuid4().hex
        new = outlast(lambda: self.ledger.first_rejections(records, token))
        fresh = [r for r, is_new in zip(rejected, new, strict=True) if is_new]
        self.store.write_rejected(fresh)  # counted by the ledger's hash of first sightings
