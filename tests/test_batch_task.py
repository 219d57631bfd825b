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
    raise redis.ConnectionError("Connection closed by server.")


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
    st = RunLedger.from_url(env.redis_dsn(), env.run_id).stats()
    assert st["batches_dead"] == 1 and st["headlines_dead"] == 2


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
