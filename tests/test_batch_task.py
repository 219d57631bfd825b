"""The one batch-task path every batch queue shares (``workers/batch_task.py``), checked on both
queues that use it, with the real Redis ledger and a real result store; faults are injected
only where the real thing cannot be made to fail on demand (a full disk, a broker that is
loading its dataset, a worker that segfaults)."""

from __future__ import annotations

import errno
from typing import Any

import pytest
import redis
from celery.exceptions import Reject

from common import redis_keys
from common.ledger import RunLedger
from common.store import ResultStore
from workers import batch_task
from workers.annotate import tasks as annotate
from workers.ner import tasks as ner

TASKS = {"annotate": (annotate, "annotate_batch", "run_batch"),
         "ner": (ner, "ner_batch", "tag_batch")}
HEADLINES = [{"id": "h1", "text": "Apple Beats Estimates"}, {"id": "h2", "text": "Ford Recalls"}]


@pytest.fixture(autouse=True)
def _no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch_task, "REQUEUE_PAUSE_S", 0.0)


def _run(task: Any, run_id: str, retries: int, bid: str = "b1") -> Any:
    task.push_request(id=f"t-{bid}-{retries}", retries=retries, called_directly=False,
                      is_eager=False, args=[run_id, bid, HEADLINES], kwargs={}, delivery_info={})
    try:
        return task.run(run_id, bid, HEADLINES)
    finally:
        task.pop_request()


@pytest.fixture
def env(make_settings, monkeypatch: pytest.MonkeyPatch):
    """Settings the task reads through ``get_settings`` (real Redis db, tmp result store)."""
    s = make_settings(max_deliveries=3)
    monkeypatch.setattr(batch_task, "get_settings", lambda: s)
    return s


def _broken(*a: Any, **k: Any) -> dict:
    raise RuntimeError("the model raised on this batch")  # the batch's own failure


def _loading(*a: Any, **k: Any) -> None:
    raise redis.BusyLoadingError("Redis is loading the dataset in memory")


@pytest.mark.parametrize("queue", sorted(TASKS))
@pytest.mark.parametrize("retries", [0, 3])
def test_a_failure_that_cannot_be_recorded_goes_back_to_the_queue(queue, retries, env, monkeypatch):
    """Found by the 100k soak on annotate, missing on ner until both shared this path: Celery
    rejects *without* requeue when it cannot publish a retry, and a dead letter that cannot be
    written must not ack the batch either."""
    mod, name, work = TASKS[queue]
    monkeypatch.setattr(mod, work, _broken)
    monkeypatch.setattr(batch_task, "dead_letter_whole_batch", _loading)
    monkeypatch.setattr(getattr(mod, name), "apply_async", _loading)
    with pytest.raises(Reject) as err:
        _run(getattr(mod, name), env.run_id, retries)
    assert err.value.requeue is True


@pytest.mark.parametrize("queue", sorted(TASKS))
def test_a_full_disk_while_dead_lettering_requeues_and_leaves_nothing_half_done(
        queue, env, monkeypatch):
    mod, name, work = TASKS[queue]
    monkeypatch.setattr(mod, work, _broken)

    def enospc(*a: Any, **k: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ResultStore, "write_dead", enospc)
    with pytest.raises(Reject) as err:
        _run(getattr(mod, name), env.run_id, retries=3)  # retries spent: dead-letter now
    assert err.value.requeue is True
    ledger = RunLedger.from_url(env.redis_dsn(), env.run_id)
    assert not ledger.is_finished("b1")  # not counted as finished: it will come back
    monkeypatch.undo()
    monkeypatch.setattr(batch_task, "get_settings", lambda: env)
    monkeypatch.setattr(mod, work, _broken)
    out = _run(getattr(mod, name), env.run_id, retries=3)  # the disk has room again
    assert out["dead"] is True and ledger.is_finished("b1")
    (dead,) = ResultStore(env.results_dir, env.run_id).iter_dead()
    assert dead["task"] == getattr(mod, name).name and len(dead["headlines"]) == 2


@pytest.mark.parametrize("queue", sorted(TASKS))
def test_a_batch_that_keeps_killing_its_worker_is_dead_lettered_as_worker_lost(
        queue, env, monkeypatch):
    """A segfault or OOM kill gives no exception to catch: the worker dies, late acks bring the
    batch back, and the only trace is that the same attempt starts again."""
    mod, name, work = TASKS[queue]
    calls = []

    def crashes(*a: Any, **k: Any) -> dict:
        calls.append(1)
        raise SystemExit("simulated worker death")  # not an Exception: nothing catches it

    monkeypatch.setattr(mod, work, crashes)
    for _ in range(env.max_deliveries):
        with pytest.raises(SystemExit):
            _run(getattr(mod, name), env.run_id, retries=0)
    out = _run(getattr(mod, name), env.run_id, retries=0)  # the 4th start does not run it
    assert len(calls) == env.max_deliveries
    assert out["dead"] is True and out["error_type"] == "worker_lost"
    (dead,) = ResultStore(env.results_dir, env.run_id).iter_dead()
    assert dead["error_type"] == "worker_lost" and dead["task"] == getattr(mod, name).name
    assert dead["kwargs"] == ({} if queue == "annotate" else  # what requeue sends it back with
                              {"model_dir": "", "threshold": None, "fingerprint": None})
    st = RunLedger.from_url(env.redis_dsn(), env.run_id).stats()
    assert st["batches_dead"] == 1 and st["headlines_dead"] == 2


@pytest.mark.parametrize("queue", sorted(TASKS))
def test_a_batch_recorded_by_a_copy_killed_before_moving_its_files_is_moved_not_dead_lettered(
        queue, env, monkeypatch):
    """Its copies died between the ledger's record and the rename as often as ``worker_lost``
    allows: the next start moves the recorded files into the store and reports the run, instead
    of a dead letter the ledger would refuse (the batch is finished) and files left staged."""
    from common.run import Run

    mod, name, work = TASKS[queue]
    task = getattr(mod, name)
    finished: list[str] = []
    monkeypatch.setattr(task, "on_run_finished", lambda run: finished.append(run.run_id))
    monkeypatch.setattr(mod, work, _broken)  # never reached
    run = Run(env.run_id, env)
    run.ledger.batch_enqueued(2)

    def dies(*a: Any, **k: Any) -> None:
        raise SystemExit("killed between the ledger and the rename")

    monkeypatch.setattr(ResultStore, "promote", dies)
    with pytest.raises(SystemExit):
        run.record_batch("b1", [{**h, "entities": []} for h in HEADLINES], {"headlines_done": 2})
    monkeypatch.undo()
    monkeypatch.setattr(batch_task, "get_settings", lambda: env)
    monkeypatch.setattr(task, "on_run_finished", lambda run: finished.append(run.run_id))
    ledger = RunLedger.from_url(env.redis_dsn(), env.run_id)
    for _ in range(env.max_deliveries):
        ledger.delivered("b1", 0)
    out = _run(task, env.run_id, 0)
    assert out == {"batch_id": "b1", "skipped": "already finished"}
    assert finished == [env.run_id] and ledger.settled()
    store = ResultStore(env.results_dir, env.run_id)
    assert sorted(r["id"] for r in store.iter_results()) == ["h1", "h2"]
    assert not list(store.iter_dead()) and ledger.stats()["batches_dead"] == 0


def test_a_retry_is_a_new_attempt_not_a_redelivery(env):
    ledger = RunLedger.from_url(env.redis_dsn(), env.run_id)
    assert [ledger.delivered("b", 0) for _ in range(2)] == [1, 2]
    assert ledger.delivered("b", 1) == 1


def test_a_stalled_copy_writes_nothing_once_another_copy_holds_or_recorded_the_batch(env):
    """Found by the multi-host harness: a worker cut off from Redis stalled mid-batch, its
    lease lapsed, another host ran and recorded the batch, then the stalled copy came back and
    overwrote the shard. The fence it asks before writing now says no."""
    import redis as _redis

    r = _redis.Redis.from_url(env.redis_dsn())
    ledger = RunLedger.from_url(env.redis_dsn(), env.run_id)
    a = batch_task.BatchLease(r, env.run_id, "b9", ttl_s=5)
    assert a.acquire()
    fence = batch_task.make_fence(ledger, "b9", a)
    assert fence()
    r.delete(a.key)  # A's renewals did not reach Redis: its lease lapsed ...
    assert fence()  # ... and nobody took it: A takes it back and may record
    r.delete(a.key)
    b = batch_task.BatchLease(r, env.run_id, "b9", ttl_s=5)
    assert b.acquire()  # the redelivered copy runs now
    assert not fence()
    b.release()
    ledger.finish_batch("b9", {"headlines_done": 2})
    assert not fence()  # recorded by the other copy
    a.release()


def test_run_batch_with_a_closed_fence_leaves_the_store_and_ledger_alone(env, fake_llm):
    from workers.annotate.batch import run_batch

    s = env.model_copy(update={"llm_base_url": fake_llm.url, "llm_model": "fake"})
    items = [{"id": f"f{i}", "text": f"Umbrella Fence Test {env.run_id} {i}"} for i in range(3)]
    out = run_batch(env.run_id, "b10", items, s, fence=lambda: False)
    assert out["skipped"] == "recorded by another copy"
    store = ResultStore(env.results_dir, env.run_id)
    assert not list(store.iter_results()) and not list(store.iter_dead())
    assert not RunLedger.from_url(env.redis_dsn(), env.run_id).is_finished("b10")


@pytest.mark.parametrize("queue", sorted(TASKS))
def test_a_transient_store_or_redis_error_goes_back_without_spending_an_attempt(
        queue, env, monkeypatch):
    """A full disk for a moment, or Redis gone for 57 ms, while a good batch records: the batch
    goes back to the queue as it is (no retry spent, no dead letter), and runs again fine."""
    mod, name, work = TASKS[queue]
    faults = [OSError(errno.ENOSPC, "No space left on device"),
              redis.ConnectionError("Connection closed by server.")]

    def flaky(*a: Any, **k: Any) -> dict:
        if faults:
            raise faults.pop(0)
        return {"batch_id": "b1", "headlines_done": 2}

    monkeypatch.setattr(mod, work, flaky)
    for _ in range(2):
        with pytest.raises(Reject) as err:
            _run(getattr(mod, name), env.run_id, retries=0)
        assert err.value.requeue is True
    assert _run(getattr(mod, name), env.run_id, retries=0) == {"batch_id": "b1",
                                                              "headlines_done": 2}
    assert not list(ResultStore(env.results_dir, env.run_id).iter_dead())


@pytest.mark.parametrize("queue", sorted(TASKS))
def test_starts_handed_back_on_purpose_never_add_up_to_worker_lost(queue, env, monkeypatch):
    """A dead letter that cannot be written (the disk full for a while) hands the batch back
    each time; those starts ended in the worker's hands, so when the disk has room the batch is
    dead-lettered for its own error, not as ``worker_lost`` (no worker died)."""
    mod, name, work = TASKS[queue]
    monkeypatch.setattr(mod, work, _broken)
    real_write_dead = ResultStore.write_dead
    full = {"n": env.max_deliveries + 1}

    def write_dead(self: ResultStore, *a: Any, **k: Any) -> None:
        if full["n"] > 0:
            full["n"] -= 1
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write_dead(self, *a, **k)

    monkeypatch.setattr(ResultStore, "write_dead", write_dead)
    for _ in range(env.max_deliveries + 1):
        with pytest.raises(Reject):
            _run(getattr(mod, name), env.run_id, retries=3)
    out = _run(getattr(mod, name), env.run_id, retries=3)
    assert out["dead"] is True and out["error_type"] == "task", out
    (dead,) = ResultStore(env.results_dir, env.run_id).iter_dead()
    assert dead["error_type"] == "task" and "the model raised" in dead["error"]


def test_a_copy_cut_off_after_its_fence_check_writes_nothing(env, monkeypatch):
    """Copy A passes its fence check, then stalls (cut off from Redis) while copy B, redelivered
    once A's lease lapsed, records the batch: 7 results and 1 dead letter. When A comes back it
    must write nothing: before, it wrote its 8 results over B's shard and removed B's dead
    letter, and the ledger (7 done, 1 dead) no longer matched the store."""
    from common.run import Run
    from workers.annotate import batch as annotate_batch_mod
    from workers.annotate.batch import BatchOutcome, run_batch

    heads = [{"id": f"h{i}", "text": f"Company {i} Beats Estimates"} for i in range(8)]
    mine = BatchOutcome(results=[{"key": f"h{i}:m:p", "id": f"h{i}", "text": heads[i]["text"],
                                  "entities": [], "valid": True, "warning": None,
                                  "hallucinated": [], "cached": False, "attempts": 1,
                                  "retries": 0, "usage": {"prompt_tokens": 1,
                                                          "completion_tokens": 1},
                                  "llm_seconds": 0.0, "copy": "A"} for i in range(8)])

    async def answers(*a: Any, **k: Any) -> BatchOutcome:
        return mine

    monkeypatch.setattr(annotate_batch_mod, "annotate_headlines", answers)
    r = redis.Redis.from_url(env.redis_dsn())
    ledger = RunLedger.from_url(env.redis_dsn(), env.run_id)
    a = batch_task.BatchLease(r, env.run_id, "bx", ttl_s=5)
    assert a.acquire()
    fence = batch_task.make_fence(ledger, "bx", a)

    def check_then_stall() -> bool:
        ok = fence()  # A may record ... then stalls past its lease:
        r.delete(a.key)
        b = batch_task.BatchLease(r, env.run_id, "bx", ttl_s=5)
        assert b.acquire()
        rows = [{"key": f"h{i}:m:p", "id": f"h{i}", "text": heads[i]["text"], "copy": "B"}
                for i in range(7)]
        assert Run(env.run_id, env).record_batch(
            "bx", rows, {"headlines_done": 7, "headlines_dead": 1}, lease=b, dead={
                "headlines": heads[7:], "error": "http: 500", "error_type": "http",
                "attempts": 6})
        b.release()
        return ok

    check_then_stall.lease = a  # type: ignore[attr-defined]
    out = run_batch(env.run_id, "bx", heads, env, fence=check_then_stall)
    assert out["skipped"] == "recorded by another copy"
    store = ResultStore(env.results_dir, env.run_id)
    rows = list(store.iter_results())
    assert len(rows) == 7 and {x["copy"] for x in rows} == {"B"}
    (dead,) = store.iter_dead()
    assert [h["id"] for h in dead["headlines"]] == ["h7"]
    st = ledger.stats()
    assert (st["headlines_done"], st["headlines_dead"]) == (7, 1)
    assert not [p for p in (store.stage_dir("results")).iterdir() if ".staged-" in p.name]
    a.release()


def test_a_copy_that_dies_between_the_ledger_and_its_files_is_finished_by_the_next(env,
                                                                                  monkeypatch):
    """The ledger recorded the batch, then the worker died before renaming its staged files
    into place: the next copy (late acks redeliver it) finds the batch finished and completes
    the promotion, so "finished" always means "in the store"."""
    from common.run import Run

    run = Run(env.run_id, env)
    rows = [{"key": f"h{i}:m:p", "id": f"h{i}", "text": "t"} for i in range(3)]

    def dies(*a: Any, **k: Any) -> None:
        raise SystemExit("killed between the ledger and the rename")

    monkeypatch.setattr(ResultStore, "promote", dies)
    with pytest.raises(SystemExit):
        run.record_batch("bd", rows, {"headlines_done": 3})
    monkeypatch.undo()
    assert run.ledger.is_finished("bd") and not list(run.store.iter_results())
    assert Run(env.run_id, env).finished("bd")
    assert [x["id"] for x in run.store.iter_results()] == ["h0", "h1", "h2"]
    assert run.ledger.pending_commit("bd") is None


# -- the contract in detail: what goes back, what is returned, what a dead letter holds -------
def _work_args(monkeypatch: pytest.MonkeyPatch, queue: str, outcome: Any) -> list[tuple]:
    """Replace the queue's work function; returns the list of the calls it gets."""
    mod, _, work = TASKS[queue]
    calls: list[tuple] = []

    def fake(*a: Any, **k: Any) -> Any:
        calls.append(a)
        return outcome(*a) if callable(outcome) else outcome

    monkeypatch.setattr(mod, work, fake)
    return calls


def test_a_second_copy_goes_back_while_the_first_runs_and_is_skipped_once_recorded(
        env, monkeypatch):
    calls = _work_args(monkeypatch, "annotate", {"batch_id": "b1"})
    task = annotate.annotate_batch
    first = batch_task.BatchLease(redis.Redis.from_url(env.redis_dsn()), env.run_id, "b1", 30)
    assert first.acquire()
    with pytest.raises(Reject) as err:
        _run(task, env.run_id, 0)
    assert err.value.requeue is True and "b1" in str(err.value.reason)
    RunLedger.from_url(env.redis_dsn(), env.run_id).finish_batch("b1", {"headlines_done": 2})
    assert _run(task, env.run_id, 0) == {"batch_id": "b1", "skipped": "already finished"}
    first.release()
    assert calls == []  # neither copy ran the batch's work


def test_the_work_gets_the_settings_and_an_open_fence(env, monkeypatch):
    calls = _work_args(monkeypatch, "annotate", lambda *a: {"fence_open": a[4]()})
    assert _run(annotate.annotate_batch, env.run_id, 0) == {"fence_open": True}
    ((run_id, bid, heads, settings, fence),) = calls
    assert (run_id, bid, heads, settings) == (env.run_id, "b1", HEADLINES, env)
    assert isinstance(fence, batch_task.Fence) and fence.batch_id == "b1"


def test_redis_unreachable_at_the_start_hands_the_batch_back(env, make_settings, monkeypatch):
    down = make_settings(redis_url="redis://127.0.0.1:1/0")
    monkeypatch.setattr(batch_task, "get_settings", lambda: down)
    calls = _work_args(monkeypatch, "annotate", {})
    with pytest.raises(Reject) as err:
        _run(annotate.annotate_batch, env.run_id, 0)
    assert err.value.requeue is True and isinstance(err.value.reason, redis.ConnectionError)

    def cannot_count(*a: Any) -> int:
        raise redis.ConnectionError("Connection reset by peer")

    monkeypatch.setattr(batch_task, "get_settings", lambda: env)
    monkeypatch.setattr(RunLedger, "delivered", cannot_count)
    with pytest.raises(Reject) as err:
        _run(annotate.annotate_batch, env.run_id, 0)
    assert err.value.requeue is True and "reset by peer" in str(err.value.reason)
    assert calls == []


def test_a_retry_waits_twice_as_long_each_time_up_to_a_minute(env, monkeypatch):
    from celery.exceptions import Retry

    _work_args(monkeypatch, "annotate", _broken)
    task = annotate.annotate_batch
    asked: list[tuple[BaseException, int]] = []

    def retry(exc: BaseException, countdown: int) -> Retry:
        asked.append((exc, countdown))
        return Retry("scheduled")

    monkeypatch.setattr(task, "retry", retry)
    monkeypatch.setattr(task, "max_retries", 10)
    for attempt in (0, 1, 2, 6):
        with pytest.raises(Retry):
            _run(task, env.run_id, attempt, bid=f"b{attempt}")
    assert [c for _, c in asked] == [2, 4, 8, 60]
    assert all(isinstance(e, RuntimeError) and "model raised" in str(e) for e, _ in asked)


def test_reasons_and_causes_travel_with_a_batch_handed_back(env, monkeypatch):
    mod, name, work = TASKS["annotate"]
    task = getattr(mod, name)
    monkeypatch.setattr(mod, work, _broken)
    monkeypatch.setattr(batch_task, "dead_letter_whole_batch", _loading)
    monkeypatch.setattr(task, "apply_async", _loading)
    with pytest.raises(Reject) as err:  # the retry could not be published
        _run(task, env.run_id, 0)
    assert "loading the dataset" in str(err.value.reason)
    with pytest.raises(Reject) as err:  # the dead letter could not be written
        _run(task, env.run_id, 3)
    assert "loading the dataset" in str(err.value.reason)
    assert isinstance(err.value.__cause__, RuntimeError)  # the batch's own error

    full = OSError(errno.ENOSPC, "No space left on device")

    def no_room(*a: Any, **k: Any) -> dict:
        raise full

    monkeypatch.setattr(mod, work, no_room)
    with pytest.raises(Reject) as err:  # a transient store error while recording
        _run(task, env.run_id, 0)
    assert err.value.reason is full


@pytest.mark.parametrize("queue", sorted(TASKS))
def test_a_dead_letter_holds_what_requeue_needs(queue, env, monkeypatch):
    """Sent back by ``tickertag requeue``, a dead letter needs its task, the task's own
    arguments, its headlines and how many attempts it had; the task says what it did."""
    mod, name, work = TASKS[queue]
    task = getattr(mod, name)
    long_error = "x" * 3000

    def broken(*a: Any, **k: Any) -> dict:
        raise RuntimeError(long_error)

    monkeypatch.setattr(mod, work, broken)
    finished: list[str] = []
    monkeypatch.setattr(task, "on_run_finished", lambda run: finished.append(run.run_id))
    monkeypatch.setattr(task, "max_retries", 0)  # the first failure is the last
    out = _run(task, env.run_id, 0)
    assert out == {"batch_id": "b1", "dead": True, "error": f"RuntimeError: {long_error}",
                   "error_type": "task"}
    (dead,) = ResultStore(env.results_dir, env.run_id).iter_dead()
    assert dead["task"] == task.name and dead["headlines"] == HEADLINES
    assert dead["attempts"] == 1 and dead["error"] == f"RuntimeError: {long_error}"[:2000]
    assert dead["kwargs"] == ({} if queue == "annotate" else
                              {"model_dir": "", "threshold": None, "fingerprint": None})
    assert finished == [env.run_id]
    monkeypatch.setattr(task, "max_retries", 3)
    _run(task, env.run_id, 3, bid="b2")
    dead = next(d for d in ResultStore(env.results_dir, env.run_id).iter_dead()
                if d["batch_id"] == "b2")
    assert dead["attempts"] == 4


@pytest.mark.parametrize("path", ["task", "worker_lost"])
def test_a_copy_that_loses_its_lease_while_dead_lettering_records_nothing(
        path, env, monkeypatch):
    """The dead letter, like a result, is recorded only while this copy holds the batch's
    lease: a copy cut off while writing it leaves the batch to the copy that took the lease."""
    mod, name, work = TASKS["annotate"]
    task = getattr(mod, name)
    monkeypatch.setattr(mod, work, _broken)
    finished: list[str] = []
    monkeypatch.setattr(task, "on_run_finished", lambda run: finished.append(run.run_id))
    r = redis.Redis.from_url(env.redis_dsn())
    real_write_dead = ResultStore.write_dead

    def write_then_lose_the_lease(self: ResultStore, *a: Any, **k: Any) -> None:
        real_write_dead(self, *a, **k)
        r.set(redis_keys.batch_lease(env.run_id, "b1"), "another-copy")

    monkeypatch.setattr(ResultStore, "write_dead", write_then_lose_the_lease)
    ledger = RunLedger.from_url(env.redis_dsn(), env.run_id)
    if path == "worker_lost":
        for _ in range(env.max_deliveries):
            ledger.delivered("b1", 0)
    out = _run(task, env.run_id, 0 if path == "worker_lost" else 3)
    assert out == {"batch_id": "b1", "skipped": "recorded by another copy"}
    assert not ledger.is_finished("b1") and finished == []
    store = ResultStore(env.results_dir, env.run_id)
    assert not list(store.iter_dead()) and not list(store.iter_results())


def test_a_batch_recorded_by_another_copy_while_it_failed_is_not_dead_lettered(env, monkeypatch):
    ledger = RunLedger.from_url(env.redis_dsn(), env.run_id)

    def recorded_elsewhere_then_fails(*a: Any) -> dict:
        ledger.finish_batch("b1", {"headlines_done": 2})
        raise RuntimeError("the model raised on this batch")

    _work_args(monkeypatch, "annotate", recorded_elsewhere_then_fails)
    out = _run(annotate.annotate_batch, env.run_id, 3)
    assert out == {"batch_id": "b1", "skipped": "recorded by another copy"}
    assert not list(ResultStore(env.results_dir, env.run_id).iter_dead())


# -- the lease ------------------------------------------------------------------------------
def test_the_lease_is_one_key_per_batch_with_a_ttl(env):
    r = redis.Redis.from_url(env.redis_dsn())
    a = batch_task.BatchLease(r, env.run_id, "b1", ttl_s=2.5)
    assert a.key == redis_keys.batch_lease(env.run_id, "b1") and a.ttl_ms == 2500
    assert batch_task.BatchLease(r, env.run_id, "b1", ttl_s=0.2).ttl_ms == 1000  # at least 1 s
    assert a.acquire()
    assert 0 < r.pttl(a.key) <= 2500
    b = batch_task.BatchLease(r, env.run_id, "b1", ttl_s=2.5)
    assert not b.acquire() and r.get(a.key).decode() == a.token  # held: the second waits
    r.delete(a.key)  # lapsed, nobody took it
    assert a.reclaim() and 0 < r.pttl(a.key) <= 2500
    b.release()  # not the holder: nothing happens
    assert r.get(a.key).decode() == a.token
    a.release()
    assert not r.exists(a.key)


def test_the_lease_is_renewed_while_held_also_after_a_redis_error(env):
    real = redis.Redis.from_url(env.redis_dsn())

    class Blip:  # the first renewal meets a connection error, as during a Redis restart
        gets = 0

        def get(self, k: str) -> Any:
            Blip.gets += 1
            if Blip.gets == 1:
                raise redis.ConnectionError("Connection reset by peer")
            return real.get(k)

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

    lease = batch_task.BatchLease(Blip(), env.run_id, "b-renew", ttl_s=6)  # renewed every 2 s
    assert lease.acquire()
    import time

    deadline = time.monotonic() + 30
    while Blip.gets < 4:  # the failed renewal and three more
        assert time.monotonic() < deadline, Blip.gets
        time.sleep(0.05)
    # 8 s after it was taken, a 6 s lease is still there: the renewals reached Redis
    assert real.get(lease.key).decode() == lease.token and real.pttl(lease.key) > 0
    lease.release()


def test_a_fence_or_reclaim_that_cannot_reach_redis_says_no(env):
    class Down:
        def __getattr__(self, name: str) -> Any:
            def fail(*a: Any, **k: Any) -> None:
                raise redis.ConnectionError("Connection refused")
            return fail

    lease = batch_task.BatchLease(Down(), env.run_id, "b1", ttl_s=5)
    assert lease.reclaim() is False
    ledger = RunLedger.from_url(env.redis_dsn(), env.run_id)
    ledger.r = Down()
    live = batch_task.BatchLease(redis.Redis.from_url(env.redis_dsn()), env.run_id, "b1", 5)
    assert live.acquire()
    assert batch_task.make_fence(ledger, "b1", live)() is False
    live.release()
