"""The run ledger's writes are exactly-once under a connection that breaks at any point.

The quick soak once ended with a batch "in flight" forever after Redis SIGKILLs: a batch was
marked finished by one command and counted by the next, and Redis died in between, so every
redelivery saw "already finished" and never counted it. Here the real Redis is used and the
fault is injected in the client's socket writes (Redis itself cannot be made to die between two
given commands): the k-th write either never reaches the server, or reaches it and the reply is
lost. After the failure the caller does what the pipeline does (the broker redelivers, the next
producer re-sends a pending batch, `tickertag requeue` runs again) and every counter must be
exactly what one clean call gives.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
from redis.connection import AbstractConnection

from common.ledger import RunLedger


class _Fault:
    """Breaks the k-th socket write of any Redis connection: before it or after it."""

    def __init__(self) -> None:
        self.at: int | None = None
        self.after = False
        self.writes = 0
        self.fired = False


@pytest.fixture()
def fault(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Fault]:
    f = _Fault()
    real = AbstractConnection.send_packed_command

    def send(self: AbstractConnection, command: object, check_health: bool = True) -> None:
        if f.at is not None and not f.fired:
            f.writes += 1
            if f.writes == f.at:
                f.fired = True
                if f.after:
                    real(self, command, check_health)
                self.disconnect()
                raise redis.ConnectionError("injected: connection lost")
        real(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", send)
    yield f


def _ledger(redis_url: str) -> RunLedger:
    return RunLedger.from_url(redis_url, f"ledger-{uuid.uuid4().hex[:8]}")


def _each_fault(fault: _Fault, redis_url: str, setup: Callable[[RunLedger], None],
                op: Callable[[RunLedger], None], redo: Callable[[RunLedger], None]
                ) -> Iterator[tuple[str, RunLedger]]:
    """Yield a ledger per fault position (k-th write, before/after) once `op` broke and the
    pipeline's recovery `redo` ran; stops when `op` needs fewer writes than k."""
    for k in range(1, 8):
        for after in (False, True):
            lg = _ledger(redis_url)
            setup(lg)
            fault.at, fault.after, fault.writes, fault.fired = k, after, 0, False
            try:
                op(lg)
            except redis.ConnectionError:
                pass
            fired, fault.at = fault.fired, None
            if not fired:
                lg.reset()
                return
            redo(lg)
            yield f"write {k} {'after' if after else 'before'} send", lg
            lg.reset()


def test_finish_batch_counts_once_whatever_write_breaks(redis_url: str, fault: _Fault) -> None:
    counts = {"headlines_done": 3, "spans": 2, "llm_seconds": 0.5}
    seen = 0
    for where, lg in _each_fault(fault, redis_url, lambda lg: lg.batch_enqueued(3),
                                 lambda lg: lg.finish_batch("b1", counts),
                                 lambda lg: lg.finish_batch("b1", counts)):  # redelivery
        st = lg.stats()
        got = (st["batches_finished"], st["headlines_done"], st["spans"], st["llm_seconds"])
        assert got == (1, 3, 2, 0.5), where
        assert lg.in_flight() == 0, where
        seen += 1
    assert seen >= 2  # both sides of at least the first write were exercised


def test_sent_counts_a_batch_once_when_the_producer_dies_mid_way(redis_url: str,
                                                                 fault: _Fault) -> None:
    heads = [{"id": f"h{i}", "text": f"Headline {i}"} for i in range(4)]

    def claim(lg: RunLedger) -> None:
        assert lg.claim_batch(heads, lambda ids: "b1") is not None

    def resend(lg: RunLedger) -> None:  # what the next producer does (Producer.resend_pending)
        for bid, items in lg.pending_batches().items():
            lg.sent(bid, len(items))

    seen = 0
    for where, lg in _each_fault(fault, redis_url, claim, lambda lg: lg.sent("b1", 4), resend):
        st = lg.stats()
        assert (st["batches_enqueued"], st["headlines_enqueued"]) == (1, 4), where
        assert lg.pending_batches() == {}, where
        seen += 1
    assert seen >= 2


def test_requeue_accounting_is_once_per_dead_batch(redis_url: str, fault: _Fault) -> None:
    def dead(lg: RunLedger) -> None:
        lg.batch_enqueued(5)
        lg.finish_batch("b1", {"headlines_dead": 5}, dead=True)

    seen = 0
    for where, lg in _each_fault(fault, redis_url, dead, lambda lg: lg.requeued("b1", 5),
                                 lambda lg: lg.requeued("b1", 5)):  # `tickertag requeue` again
        st = lg.stats()
        assert (st["batches_enqueued"], st["batches_dead"], st["headlines_dead"]) == (2, 0, 0), where
        assert st["requeued"] == 5 and lg.in_flight() == 1, where
        assert lg.requeued("b1", 5) is False  # not dead any more: nothing to count
        seen += 1
    assert seen >= 2


def test_a_redis_that_may_evict_queues_is_refused(redis_url, tmp_path):
    """maxmemory with an evicting policy silently drops queued batches under pressure: the
    check refuses it, and a worker will not start on it."""
    import time

    import redis as _redis

    from common.redis_policy import UnsafeRedis, check_no_eviction
    from common.services import start_worker

    r = _redis.Redis.from_url(redis_url)
    before = r.config_get("maxmemory*")
    try:
        r.config_set("maxmemory", "1gb")
        r.config_set("maxmemory-policy", "allkeys-lru")
        with pytest.raises(UnsafeRedis, match="noeviction"):
            check_no_eviction(r)
        w = start_worker("ner", tmp_path, concurrency=1, env={"TICKERTAG_REDIS_URL": redis_url})
        deadline = time.monotonic() + 60
        while w.alive() and time.monotonic() < deadline:
            time.sleep(0.5)
        alive = w.alive()
        w.stop()
        assert not alive and "maxmemory-policy allkeys-lru" in w.tail(5000)
        r.config_set("maxmemory-policy", "noeviction")
        check_no_eviction(r)  # refusing writes is safe: producers and workers retry
    finally:
        r.config_set("maxmemory", before["maxmemory"])
        r.config_set("maxmemory-policy", before["maxmemory-policy"])


def test_store_delete_removes_the_whole_run(tmp_path):
    from common.store import ResultStore

    s = ResultStore(str(tmp_path / "runs"), "r1")
    s.write_results("b1", [{"key": "k", "id": "h", "text": "Apple"}])
    s.write_dead("b2", [{"id": "h2", "text": "Ford"}], "boom", "task", 1)
    other = ResultStore(str(tmp_path / "runs"), "r2")
    other.write_results("b1", [{"key": "k", "id": "h", "text": "Apple"}])
    s.delete()
    assert not list(s.iter_results()) and not list(s.iter_dead())
    assert len(list(other.iter_results())) == 1  # another run is untouched
    s.delete()  # deleting twice is fine


def test_a_run_with_two_producers_finalizes_once_after_both(redis_url):
    """The first producer to finish marked the run produced, and a worker finishing the last
    in-flight batch finalized it while the second producer was still sending."""
    import time
    import uuid

    from common.ledger import PRODUCER_TTL_S, RunLedger

    led = RunLedger.from_url(redis_url, f"two-{uuid.uuid4().hex[:8]}")
    led.producer_alive("A")
    led.producer_alive("B")
    led.batch_enqueued(4)
    led.finish_batch("b1", {"headlines_done": 4})
    led.mark_produced()
    led.producer_done("A")
    assert not led.try_finalize()  # B is still sending
    led.producer_done("B")
    assert led.try_finalize() and not led.try_finalize()  # once
    # a producer that was killed stops counting once its heartbeat is old
    led2 = RunLedger.from_url(redis_url, f"two-{uuid.uuid4().hex[:8]}")
    led2.r.zadd(f"{led2.k}:producers", {"killed": time.time() - PRODUCER_TTL_S - 1})
    led2.mark_produced()
    assert led2.live_producers() == 0 and led2.try_finalize()


def test_the_store_names_every_stage_directory(tmp_path):
    from common.store import ResultStore

    s = ResultStore(str(tmp_path / "runs"), "r9")
    assert s.stage_dir("curated") == tmp_path / "runs" / "r9" / "curated"
    assert s.run_file("aliases.json") == tmp_path / "runs" / "r9" / "aliases.json"
    with pytest.raises(ValueError, match="unknown stage"):
        s.stage_dir("curate")


def test_an_in_flight_copy_lives_from_send_to_finish(redis_url: str) -> None:
    """The copy the lost-batch sweep re-sends from (``workers.lost``): written with the send,
    gone with the outcome (a result or a dead letter), handed to the new id on requeue, and
    never written back once the batch finished."""
    lg = RunLedger.from_url(redis_url, f"t-{uuid.uuid4().hex[:8]}")
    copy = {"task": "tickertag.annotate.batch", "kwargs": {}, "headlines": [{"id": "h1"}]}
    for bid in ("b1", "b2"):  # a batch is claimed (pending) before it is sent
        assert lg.claim_batch([{"id": f"{bid}-h1"}], lambda _ids, b=bid: b) is not None
        assert lg.sent(bid, 1, copy)
    got = lg.inflight_copies()
    assert set(got) == {"b1", "b2"} and got["b1"]["headlines"] == [{"id": "h1"}]
    assert got["b1"]["sent_at"] > 0
    lg.finish_batch("b1", {"headlines_done": 1})
    lg.finish_batch("b2", {"headlines_dead": 1}, dead=True)
    assert lg.inflight_copies() == {}
    lg.mark_inflight("b1", {**copy, "missing_since": 1.0})  # the sweep, late: no resurrection
    assert lg.inflight_copies() == {}
    assert lg.requeued("b2", 1, "b2-r1", copy)
    assert set(lg.inflight_copies()) == {"b2-r1"}
    assert lg.requeued("b2", 1, "b2-r2", copy) is False  # a second requeue writes nothing
    assert set(lg.inflight_copies()) == {"b2-r1"}
    lg.reset()


def test_the_sweep_rewrites_an_in_flight_record_and_only_that(redis_url: str) -> None:
    """``mark_inflight`` replaces the copy of a batch still in flight with what the sweep saw;
    a batch that is not in flight (never sent, or finished) gets no record."""
    lg = RunLedger.from_url(redis_url, f"t-{uuid.uuid4().hex[:8]}")
    copy = {"task": "tickertag.annotate.batch", "kwargs": {}, "headlines": [{"id": "h1"}]}
    assert lg.claim_batch([{"id": "h1"}], lambda _ids: "b1") is not None
    assert lg.sent("b1", 1, copy)
    lg.mark_inflight("b1", {**copy, "missing_since": 1.0})
    assert lg.inflight_copies() == {"b1": {**copy, "missing_since": 1.0}}
    lg.mark_inflight("never-sent", copy)
    assert set(lg.inflight_copies()) == {"b1"}
    lg.reset()


def test_a_claimed_batch_is_named_by_its_new_headlines_only(redis_url: str) -> None:
    """The batch id is made from the headlines this claim takes, not from candidates another
    batch already took: a resent batch keeps its id, a partly new one gets its own."""
    lg = RunLedger.from_url(redis_url, f"t-{uuid.uuid4().hex[:8]}")
    heads = [{"id": f"h{i}"} for i in range(4)]

    def make_id(ids: list[str]) -> str:
        return "+".join(ids)

    assert lg.claim_batch(heads[:2], make_id) == ("h0+h1", heads[:2])
    assert lg.claim_batch(heads, make_id) == ("h2+h3", heads[2:])
    assert set(lg.pending_batches()) == {"h0+h1", "h2+h3"}
    # every candidate is taken, and a batch of them is claimed but unsent: the claim gives it
    # back (a claim retried after Redis applied it and the reply was lost must find it)
    assert lg.claim_batch(heads[2:], make_id) == ("h2+h3", heads[2:])
    assert lg.sent("h0+h1", 2) and lg.sent("h2+h3", 2)
    assert lg.claim_batch(heads, make_id) is None  # nothing left to claim
    lg.reset()


def test_a_claim_that_races_another_producer_retries_without_what_it_took(redis_url: str) -> None:
    """Another producer claims a candidate between this claim's read and its write: the write
    is refused (WATCH) and the claim is made again, without that headline, not given up."""
    lg = RunLedger.from_url(redis_url, f"t-{uuid.uuid4().hex[:8]}")
    other = redis.Redis.from_url(redis_url)
    asked: list[list[str]] = []

    def make_id(ids: list[str]) -> str:
        if not asked:  # the first attempt: another producer takes h0 meanwhile
            other.sadd(f"{lg.k}:enqueued", "h0")
        asked.append(ids)
        return "+".join(ids)

    heads = [{"id": "h0"}, {"id": "h1"}]
    assert lg.claim_batch(heads, make_id) == ("h1", heads[1:])
    assert asked == [["h0", "h1"], ["h1"]]
    lg.reset()


def test_run_meta_counters_rejections_and_copies(redis_url: str) -> None:
    """The small writes beside the batch scripts: the run's task and meta, counters not tied
    to a batch (whole and fractional), first-seen rejected rows, a send without a copy, and
    dropping a copy."""
    lg = RunLedger.from_url(redis_url, f"t-{uuid.uuid4().hex[:8]}")
    assert lg.task() is None
    lg.set_task("tickertag.ner.batch")
    lg.set_meta(pool=1200, note="escalation")
    lg.set_meta()  # nothing to write
    assert lg.task() == "tickertag.ner.batch"
    assert lg.meta() == {"task": "tickertag.ner.batch", "pool": "1200", "note": "escalation"}
    lg.count("retries")
    lg.count("retries", 2)
    lg.count("llm_seconds", 0.25)
    lg.count("prompt_tokens", 3.0)
    st = lg.stats()
    assert (st["retries"], st["llm_seconds"], st["prompt_tokens"]) == (3, 0.25, 3)
    assert lg.first_rejections([], "a") == []
    assert lg.first_rejections(["src#1", "src#2"], "a") == [True, True]
    assert lg.first_rejections(["src#2", "src#3"], "b") == [False, True]
    # the same call retried (its reply lost in an outage) still sees its records first
    assert lg.first_rejections(["src#2", "src#3"], "b") == [False, True]
    assert lg.stats()["rejected"] == 3  # each record once, the retried call included
    for bid in ("b1", "b2"):
        assert lg.claim_batch([{"id": bid}], lambda _ids, b=bid: b) is not None
    assert lg.sent("b1", 1)  # no copy given: none kept
    assert lg.inflight_copies() == {} and lg.in_flight() == 1
    assert lg.sent("b2", 1, {"task": "t", "kwargs": {}, "headlines": []})
    lg.drop_inflight("b2")
    assert lg.inflight_copies() == {} and lg.in_flight() == 2
    lg.reset()
    assert lg.stats()["batches_enqueued"] == 0 and lg.meta() == {}


def test_enqueue_counts_claims_deliveries_and_reset_stay_in_their_run(redis_url: str) -> None:
    import time

    from common import redis_keys
    from common.ledger import PRODUCER_TTL_S, REQUEUE_CLAIM_S

    lg = RunLedger.from_url(redis_url, f"t-{uuid.uuid4().hex[:8]}")
    other = RunLedger.from_url(redis_url, f"t-{uuid.uuid4().hex[:8]}")
    other.batch_enqueued(1)
    lg.batch_enqueued(3)
    started = lg.stats()["started_at"]
    lg.batch_enqueued(2)
    st = lg.stats()
    assert (st["batches_enqueued"], st["headlines_enqueued"], st["started_at"]) == (2, 5, started)
    assert type(st["batches_enqueued"]) is int and started > 0  # whole counts read as ints
    assert lg.r.sismember(redis_keys.RUNS, lg.run_id)
    lg.finish_batch("b1", {"headlines_done": 3})
    assert lg.pending_commit("b1") is None  # no outcome given: none kept
    assert lg.stats()["batches_dead"] == 0  # a batch is not dead unless it says so
    # a requeue without a copy keeps no in-flight record
    lg.finish_batch("b2", {"headlines_dead": 2}, dead=True)
    assert lg.requeued("b2", 2, "b2-r1") and lg.inflight_copies() == {}
    # a requeue claim lapses: a requeue killed mid-send does not hold the letter for ever
    assert lg.claim_dead("b2", "me")
    assert 0 < lg.r.ttl(f"{lg.k}:requeue-claim:b2") <= REQUEUE_CLAIM_S
    # a start handed back is one start taken back; the deliveries live a week
    assert lg.delivered("b3", 0) == 1
    lg.undeliver("b3", 0)
    assert lg.delivered("b3", 0) == 1
    assert 7 * 24 * 3600 - 60 < lg.r.ttl(f"{lg.k}:deliveries") <= 7 * 24 * 3600
    # finalizing asks about producers at the time it is given
    lg.producer_alive("A")
    lg.mark_produced()
    lg.finish_batch("b2-r1", {"headlines_done": 2})
    assert not lg.try_finalize()  # A is alive now
    assert lg.try_finalize(now=time.time() + PRODUCER_TTL_S + 1)  # ... and gone by then
    lg.reset()
    assert lg.stats()["batches_enqueued"] == 0
    assert other.stats()["batches_enqueued"] == 1  # another run is untouched
    other.reset()
