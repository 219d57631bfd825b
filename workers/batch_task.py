"""One task base for every batch queue (``annotate``, ``ner``, and the next one).

Why one base: what happens around a batch — retry with backoff, a retry that cannot be published,
dead-lettering, a store or ledger that fails while recording, a batch that keeps killing its
worker — must be the same on every queue, or the queues drift (the ``ner`` queue lacked two of
the annotate queue's fixes until they shared this). A task subclasses nothing itself: it is
declared with ``base=BatchTask`` and calls ``self.guard(...)`` around its plain work function.

The outcomes, each tested in ``tests/test_batch_task.py``:
- the work returns: its result is returned (and the message acked);
- it raises: retried up to ``max_retries`` with exponential backoff; a retry Celery cannot
  publish (Redis restarting) is turned into a requeue, never an ack-and-forget;
- it still raises: the whole batch is dead-lettered (``tickertag requeue`` sends it back to the
  same queue with the same arguments);
- the dead letter or the ledger cannot be written (Redis down, a full disk, a store that
  refuses): the message is rejected with requeue, so the batch comes back, never "in flight"
  forever;
- the same attempt starts more than ``settings.max_deliveries`` times (its worker died each
  time): dead-lettered with error type ``worker_lost`` before it runs again;
- a second copy arrives while the first still runs (a batch longer than the visibility
  timeout, or a broker connection lost mid-batch): the running copy holds the batch's lease,
  renewed while it works; the second copy finds it held, waits a moment and goes back to the
  queue, and once the first has recorded the batch any copy is skipped. One copy works on a
  batch at a time, so no headline is sent to the endpoint twice nor ends both as a result
  and a dead letter. A worker that dies stops renewing; its lease lapses within
  ``settings.batch_lease_s`` and the next copy runs.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import redis
from celery import Task
from celery.exceptions import Reject
from celery.signals import worker_ready
from celery.utils.log import get_task_logger

from common import redis_keys
from common.ledger import RunLedger
from common.run import Run
from common.settings import Settings, get_settings
from workers import lost_sweeper

log = get_task_logger(__name__)

# Every worker process imports this module (the app includes every stage's tasks), so every
# worker runs the lost-batch sweep in the background (``workers.lost_sweeper``).
worker_ready.connect(lost_sweeper.start, weak=False)

# What a failed record (store or ledger) raises: an OSError from a local or fsspec store
# (ENOSPC, EACCES, a remote store's I/O error), a RedisError from the ledger.
RECORD_ERRORS = (redis.RedisError, OSError)
# A batch handed back because its outcome could not be recorded comes straight back to a worker;
# a short pause keeps a full disk or a Redis restart from turning into a hot loop.
REQUEUE_PAUSE_S = 2.0


_RELEASE = ("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) "
            "end return 0")
RELEASE_RETRY_S = 0.5  # a release that could not reach Redis is tried again this often


class BatchLease:
    """One running copy per batch: a Redis key with a token and a TTL, renewed by a thread
    while the batch runs, released (only by its holder) when it ends."""

    def __init__(self, client: redis.Redis, run_id: str, bid: str, ttl_s: float) -> None:
        self.r, self.key = client, redis_keys.batch_lease(run_id, bid)
        self.ttl_ms = max(1000, int(ttl_s * 1000))
        self.token = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> bool:
        if not self.r.set(self.key, self.token, nx=True, px=self.ttl_ms):
            return False
        self._thread = threading.Thread(target=self._renew, daemon=True)
        self._thread.start()
        return True

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl_ms / 3000):
            try:
                if self.r.get(self.key) in (self.token, self.token.encode()):
                    self.r.pexpire(self.key, self.ttl_ms)
            except redis.RedisError:
                continue  # a blip: the next renewal may still be in time

    def reclaim(self) -> bool:
        """Whether this copy may record the batch now: it still holds the lease, or the lease
        lapsed (a Redis blip stopped the renewals) and nobody took it, so it takes it back. A
        copy whose lease another copy holds must write nothing: that copy records the batch."""
        try:
            if self.r.get(self.key) in (self.token, self.token.encode()):
                return True
            return bool(self.r.set(self.key, self.token, nx=True, px=self.ttl_ms))
        except redis.RedisError:
            return False

    def release(self) -> None:
        """Free the lease for the next copy. A copy that hands its batch back because Redis is
        restarting cannot reach it to release: with persistence the lease outlives the restart,
        and every copy of the batch went back to the queue until the TTL ran out (30 s by
        default; ``benchmarks/faults.py --scenario redis-restart``). So the release is retried
        in the background until Redis answers, for at most one TTL (it has lapsed by then)."""
        self._stop.set()
        if not self._delete():
            threading.Thread(target=self._release_later, daemon=True).start()

    def _delete(self) -> bool:
        """Delete the lease if this copy still holds it; False when Redis cannot be reached."""
        try:
            self.r.eval(_RELEASE, 1, self.key, self.token)
            return True
        except redis.RedisError:
            return False

    def _release_later(self) -> None:
        deadline = time.monotonic() + self.ttl_ms / 1000
        while time.monotonic() < deadline and not self._delete():
            time.sleep(RELEASE_RETRY_S)


class Fence:
    """The check a batch's work may make before its expensive part ends (``fence()``: False
    when another copy recorded the batch, or holds it now), and the lease the recording itself
    is fenced by (``Run.record_batch`` records only while this copy holds it, in the same atomic
    step). Found by the multi-host harness: a stalled copy came back and overwrote the shard
    another host had already recorded; then a copy cut off between its fence check and its
    write did the same, so the check alone is only an early exit."""

    def __init__(self, ledger: RunLedger, batch_id: str, lease: BatchLease) -> None:
        self.ledger, self.batch_id, self.lease = ledger, batch_id, lease

    def __call__(self) -> bool:
        try:
            if self.ledger.is_finished(self.batch_id):
                return False
        except redis.RedisError:
            return False
        return self.lease.reclaim()


def make_fence(ledger: RunLedger, batch_id: str, lease: BatchLease) -> Fence:
    return Fence(ledger, batch_id, lease)


def dead_letter_whole_batch(run_id: str, bid: str, headlines: list[dict], error: str,
                            error_type: str, attempts: int, settings: Settings, task: str,
                            kwargs: dict | None = None,
                            on_finish: Callable[[Run], Any] | None = None,
                            lease: BatchLease | None = None) -> bool:
    """The batch itself failed (not one call): keep all of it for ``tickertag requeue``.

    A shard an earlier attempt wrote is dropped (the outcome is the dead letter alone): its
    requeued copy would otherwise write the same result keys a second time. False when another
    copy recorded the batch first."""
    run = Run(run_id, settings)
    won = run.record_batch(bid, [], {"headlines_dead": len(headlines)}, lease=lease, dead={
        "headlines": headlines, "error": error[:2000], "error_type": error_type,
        "attempts": attempts, "task": task, "kwargs": kwargs})
    if won and on_finish:
        on_finish(run)
    return won


class BatchTask(Task):
    """Base class of batch tasks; see the module docstring for the contract."""

    abstract = True
    max_retries = 3

    def on_run_finished(self, run: Run) -> None:
        """Called after a batch is dead-lettered (the annotate queue starts curation when the
        run is complete); nothing by default."""

    def guard(self, run_id: str, batch_id: str, headlines: list[dict],
              work: Callable[[Settings, Fence], dict[str, Any]],
              requeue_kwargs: dict | None = None) -> dict[str, Any]:
        settings = get_settings()
        attempt = int(self.request.retries or 0)
        try:
            ledger = Run(run_id, settings).ledger
            lease = BatchLease(ledger.r, run_id, batch_id, settings.batch_lease_s)
            if not lease.acquire():
                if ledger.is_finished(batch_id):
                    return {"batch_id": batch_id, "skipped": "already finished"}
                log.info("batch %s is running in another worker; back to the queue", batch_id)
                time.sleep(REQUEUE_PAUSE_S)
                raise Reject(f"batch {batch_id} is running elsewhere", requeue=True)
        except redis.RedisError as e:  # cannot coordinate: let the broker bring it back later
            time.sleep(REQUEUE_PAUSE_S)
            raise Reject(e, requeue=True) from e
        try:
            return self._guarded(run_id, batch_id, headlines, work, requeue_kwargs, settings,
                                 ledger, attempt, lease)
        finally:
            lease.release()

    def _guarded(self, run_id: str, batch_id: str, headlines: list[dict],
                 work: Callable[[Settings, Fence], dict[str, Any]], requeue_kwargs: dict | None,
                 settings: Settings, ledger: RunLedger, attempt: int,
                 lease: BatchLease) -> dict[str, Any]:
        try:
            starts = ledger.delivered(batch_id, attempt)
            # recorded, but its copies were killed before moving the files: ``finished`` moves
            # them, and the run may settle now
            if starts > settings.max_deliveries and (run := Run(run_id, settings)).finished(
                    batch_id):
                self.on_run_finished(run)
                return {"batch_id": batch_id, "skipped": "already finished"}
        except RECORD_ERRORS as e:  # cannot count or move: let the broker bring it back later
            raise Reject(e, requeue=True) from e
        if starts > settings.max_deliveries:
            log.error("batch %s: attempt %d started %d times (its worker died each time): "
                      "dead-lettered as worker_lost", batch_id, attempt, starts)
            return self._dead(run_id, batch_id, headlines, settings, requeue_kwargs,
                              f"worker_lost: started {starts} times without finishing "
                              f"(max_deliveries={settings.max_deliveries})", "worker_lost",
                              lease=lease)
        try:
            return self._attempt(run_id, batch_id, headlines, work, requeue_kwargs, settings,
                                 ledger, attempt, lease)
        except Reject as rej:
            # Handed back on purpose (a store or Redis error, a retry that could not be
            # published): this start ended here, the worker did not die. Only starts that never
            # end count towards ``worker_lost``.
            if rej.requeue:
                try:
                    ledger.undeliver(batch_id, attempt)
                except redis.RedisError:
                    log.warning("batch %s: could not take back start %d", batch_id, starts)
            raise

    def _attempt(self, run_id: str, batch_id: str, headlines: list[dict],
                 work: Callable[[Settings, Fence], dict[str, Any]], requeue_kwargs: dict | None,
                 settings: Settings, ledger: RunLedger, attempt: int,
                 lease: BatchLease) -> dict[str, Any]:
        fence = make_fence(ledger, batch_id, lease)
        try:
            return work(settings, fence)
        except RECORD_ERRORS as exc:
            # A transient store or Redis error (a full disk for a moment, Redis restarting):
            # the batch's work was fine and is not retried as a failure (no attempt is spent,
            # it never becomes a dead letter for this); it comes back after a pause and the
            # response cache answers its LLM calls again.
            log.warning("batch %s: could not record (%s), requeueing", batch_id, exc)
            time.sleep(REQUEUE_PAUSE_S)
            raise Reject(exc, requeue=True) from exc
        except Exception as exc:  # the batch as a whole broke: retry, then dead-letter
            if attempt < self.max_retries:
                log.warning("batch %s failed (%s), retrying", batch_id, exc)
                try:
                    raise self.retry(exc=exc, countdown=min(60, 2 ** (attempt + 1))) from exc
                except Reject as rej:
                    # Celery rejects *without* requeue when it cannot publish the retry (Redis
                    # restarting: "loading the dataset in memory"): with late acks the batch
                    # would be gone, counted in flight forever. Hand it back instead; if the
                    # broker is still down the message stays unacked and the visibility
                    # timeout brings it back.
                    log.warning("batch %s: retry not published (%s), requeueing", batch_id,
                                rej.reason)
                    raise Reject(rej.reason, requeue=True) from exc
            if not fence():
                return {"batch_id": batch_id, "skipped": "recorded by another copy"}
            log.error("batch %s dead-lettered: %s", batch_id, exc)
            return self._dead(run_id, batch_id, headlines, settings, requeue_kwargs,
                              f"{type(exc).__name__}: {exc}", "task", cause=exc, lease=lease)

    def _dead(self, run_id: str, batch_id: str, headlines: list[dict], settings: Settings,
              requeue_kwargs: dict | None, error: str, error_type: str,
              cause: BaseException | None = None, lease: BatchLease | None = None
              ) -> dict[str, Any]:
        try:
            won = dead_letter_whole_batch(
                run_id, batch_id, headlines, error, error_type, int(self.request.retries or 0) + 1,
                settings, task=self.name, kwargs=requeue_kwargs, on_finish=self.on_run_finished,
                lease=lease)
        except RECORD_ERRORS as e:  # not recorded: redeliver rather than ack and forget
            log.error("batch %s: dead letter not recorded (%s), requeueing", batch_id, e)
            time.sleep(REQUEUE_PAUSE_S)
            raise Reject(e, requeue=True) from (cause or e)
        if won is False:
            return {"batch_id": batch_id, "skipped": "recorded by another copy"}
        return {"batch_id": batch_id, "dead": True, "error": error, "error_type": error_type}
