"""Two producers on one run: a claimed batch is counted once whoever sends it, and a batch sent
into a run that already finalized reopens it so it is curated in a follow-up. Real Redis and the
real Celery app (messages stay in the broker: no worker is needed to count)."""

from __future__ import annotations

from typing import Any

import pytest

from common.ledger import RunLedger
from common.run import Run
from common.task_names import CURATE_TASK
from producer.produce import Producer


def _rows(n: int, tag: str) -> list[dict[str, Any]]:
    return [{"title": f"{tag} Company {i} Raises Guidance", "date": "2015-03-0"
             f"{1 + i % 9}", "stock_symbol": "A"} for i in range(n)]


def test_a_second_producer_resending_a_claimed_batch_does_not_count_it_twice(
        make_settings, celery_app, monkeypatch):
    """The first producer claimed a batch and waits for room; a second producer starts and
    re-sends every pending batch, that one included; then the first sends it too. Before, the
    run counted 8 batches for 7 and one stayed "in flight" forever."""
    s = make_settings(batch_size=5, max_batches_in_flight=100, auto_curate=False)
    first = Producer(celery_app, s)
    second = Producer(celery_app, s)
    real_wait = Producer._wait_for_room
    started = {"second": False}

    def wait_then_second_starts(self: Producer, outage_s: float = 120.0) -> None:
        if self is first and not started["second"]:
            started["second"] = True
            second.resend_pending()  # what a producer does first when it starts
        real_wait(self, outage_s)

    monkeypatch.setattr(Producer, "_wait_for_room", wait_then_second_starts)
    rep = first.run(_rows(35, "Two"), "two.csv")
    ledger = RunLedger.from_url(s.redis_dsn(), s.run_id)
    st = ledger.stats()
    assert second.report.resent_pending == 5  # the first producer's claimed batch
    assert rep.batches == 6 and rep.enqueued == 30  # it did not count the one sent for it
    assert (st["batches_enqueued"], st["headlines_enqueued"]) == (7, 35)
    for bid in [*ledger.inflight_copies()]:
        ledger.finish_batch(bid, {"headlines_done": 5})
    assert ledger.in_flight() == 0


def test_a_late_batch_reopens_a_finalized_run_and_it_is_curated_again(make_settings,
                                                                      celery_app, monkeypatch):
    """A producer paused past its heartbeat (SIGSTOP, a laptop lid) while another finished the
    run: the run finalized without its headlines. Its late batch reopens the run; the run
    finalizes (and curation is asked for) again once the late batch finishes."""
    s = make_settings(batch_size=8, max_batches_in_flight=100, auto_curate=True)
    run = Run(s.run_id, s)
    sent_curate: list[list] = []
    real_send = celery_app.send_task

    def send_task(name: str, args: Any = None, **k: Any) -> Any:
        if name == CURATE_TASK:
            return sent_curate.append(args)
        return real_send(name, args=args, **k)

    monkeypatch.setattr(celery_app, "send_task", send_task)

    early = Producer(celery_app, s)
    early.run(_rows(8, "Early"), "early.csv")
    for bid in [*run.ledger.inflight_copies()]:
        run.ledger.finish_batch(bid, {"headlines_done": 8})
    assert run.maybe_finalize(celery_app) and sent_curate == [[s.run_id]]

    late = Producer(celery_app, s)  # the paused producer, resumed
    late.run(_rows(18, "Late"), "late.csv")
    st = run.ledger.stats()
    assert st["reopened"] >= 1 and st["headlines_enqueued"] == 26
    assert not run.maybe_finalize(celery_app)  # its batches are still in flight
    for bid in [*run.ledger.inflight_copies()]:
        run.ledger.finish_batch(bid, {"headlines_done": 8})
    assert run.maybe_finalize(celery_app)
    assert sent_curate == [[s.run_id], [s.run_id]]  # curated again, with all 26 headlines


@pytest.mark.parametrize("n", [1])
def test_a_producer_limited_to_one_batch_in_flight_is_not_stuck_by_a_double_count(
        n, make_settings, celery_app, monkeypatch):
    """With ``max_batches_in_flight=1`` the double count above left the first producer waiting
    for good: here every batch the producer sends is finished while it waits for room."""
    s = make_settings(batch_size=5, max_batches_in_flight=n, auto_curate=False)
    ledger = RunLedger.from_url(s.redis_dsn(), s.run_id)
    first, second = Producer(celery_app, s), Producer(celery_app, s)
    real_wait = Producer._wait_for_room
    calls = {"n": 0}

    def wait(self: Producer, outage_s: float = 120.0) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            second.resend_pending()
        for bid in [*ledger.inflight_copies()]:  # a worker finishing what is in flight
            ledger.finish_batch(bid, {"headlines_done": 5})
        real_wait(self, 5.0)

    monkeypatch.setattr(Producer, "_wait_for_room", wait)
    rep = first.run(_rows(20, "One"), "one.csv")
    assert rep.enqueued + second.report.resent_pending == 20
    assert ledger.stats()["batches_enqueued"] == 4
