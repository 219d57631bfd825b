"""``common.run.Run``: starting curation once a run is complete, the spending stop, and a
dead letter whose promotion the next copy finishes. Real Redis (the test db), a real store."""

from __future__ import annotations

from typing import Any

import pytest

from common.run import Run
from common.store import ResultStore
from common.task_names import CURATE_TASK


class _App:
    """Records what would be sent to the broker."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list, str, str]] = []

    def send_task(self, name: str, args: list, queue: str, routing_key: str,
                  **_options: object) -> None:
        self.sent.append((name, args, queue, routing_key))


def test_curation_starts_once_when_the_run_is_complete_and_only_if_asked(make_settings):
    app = _App()
    off = Run("unused", make_settings(auto_curate=False))
    off.ledger.mark_produced()
    assert off.maybe_finalize(app) is False and app.sent == []
    run = Run(make_settings(auto_curate=True).run_id, make_settings(auto_curate=True))
    run.ledger.batch_enqueued(2)
    run.ledger.mark_produced()
    assert run.maybe_finalize(app) is False  # a batch still in flight
    run.ledger.finish_batch("b1", {"headlines_done": 2})
    assert run.maybe_finalize(app) is True
    assert run.maybe_finalize(app) is False  # once
    assert app.sent == [(CURATE_TASK, [run.run_id], "curate", "curate")]


def test_the_budget_stops_at_the_configured_spend_and_says_so(make_settings):
    s = make_settings(price_input_per_mtok=1.0, price_output_per_mtok=1.0, budget_usd=0.5)
    assert Run(s.run_id, make_settings()).over_budget() is False  # no budget: never over
    run = Run(s.run_id, s)
    run.ledger.count("prompt_tokens", 400_000)
    assert run.spent_usd() == 0.4 and run.over_budget() is False
    assert "budget_reached" not in run.ledger.meta()
    run.ledger.count("completion_tokens", 100_000)  # exactly the budget: stop
    assert run.spent_usd() == 0.5 and run.over_budget() is True
    assert run.ledger.meta()["budget_reached"] == "0.5"


def test_a_dead_letter_recorded_but_not_promoted_is_promoted_by_the_next_copy(
        make_settings, monkeypatch: pytest.MonkeyPatch):
    s = make_settings()
    run = Run(s.run_id, s)
    heads = [{"id": "h1", "text": "Ford Recalls"}]

    def dies(*a: Any, **k: Any) -> None:
        raise SystemExit("killed between the ledger and the rename")

    monkeypatch.setattr(ResultStore, "promote", dies)
    with pytest.raises(SystemExit):
        run.record_batch("bd", [], {"headlines_dead": 1}, dead={
            "headlines": heads, "error": "http: 500", "error_type": "http", "attempts": 4})
    monkeypatch.undo()
    assert not list(run.store.iter_dead())  # staged, not in place yet
    assert Run(s.run_id, s).finished("bd")
    (dead,) = run.store.iter_dead()
    assert dead["headlines"] == heads and dead["attempts"] == 4
    assert run.stage_dir("dead") == run.store.stage_dir("dead")


def test_curation_waits_for_the_last_batch_files_and_its_next_copy_starts_it(
        make_settings, monkeypatch: pytest.MonkeyPatch):
    """A batch counts as finished a moment before its files move into the store: a run that
    finalized then would be curated without that batch. Here its copy dies in between; the run
    stays open until the redelivered copy promotes the files, and that copy starts curation."""
    import workers.annotate.batch as annotate_batch

    s = make_settings(auto_curate=True)
    run, app = Run(s.run_id, s), _App()
    heads = [{"id": "h1", "text": "Ford Recalls Cars"}]
    run.ledger.batch_enqueued(1)
    run.ledger.mark_produced()

    def dies(*a: Any, **k: Any) -> None:
        raise SystemExit("killed between the ledger and the rename")

    monkeypatch.setattr(ResultStore, "promote", dies)
    with pytest.raises(SystemExit):
        run.record_batch("b1", [{**heads[0], "entities": []}], {"headlines_done": 1})
    monkeypatch.undo()
    assert run.ledger.in_flight() == 0 and not run.ledger.settled()
    assert run.maybe_finalize(app) is False and app.sent == []  # its results are not in place
    monkeypatch.setattr(annotate_batch, "app", app)
    out = annotate_batch.run_batch(s.run_id, "b1", heads, s)  # the redelivered copy
    assert out["skipped"] == "already finished" and run.ledger.settled()
    assert [r["id"] for r in run.store.iter_results()] == ["h1"]
    assert app.sent == [(CURATE_TASK, [run.run_id], "curate", "curate")]


def test_a_curate_message_its_finalizer_never_sent_is_sent_by_the_sweep_once(make_settings):
    """A process that finalized the run and died before publishing its curate message (or
    while publishing) left a finished run that nothing would curate: the lost-batch sweep sends
    it once the grace has passed, and only then; a message marked sent is never sent again."""
    import time

    from workers.lost import CURATE_GRACE_S, send_unsent_curation

    s = make_settings(auto_curate=True)
    run, app = Run(s.run_id, s), _App()
    run.ledger.mark_produced()
    assert run.ledger.unsent_for() is None  # not finalized
    assert run.ledger.try_finalize()  # ... and the finalizer dies here
    now = time.time()
    assert 0 <= run.ledger.unsent_for(now) < 5
    assert send_unsent_curation(app, run.ledger, now + CURATE_GRACE_S / 2) is False  # in grace
    assert app.sent == []
    assert send_unsent_curation(app, run.ledger, now + CURATE_GRACE_S + 1) is True
    assert app.sent == [(CURATE_TASK, [run.run_id], "curate", "curate")]
    assert run.ledger.unsent_for() is None
    assert send_unsent_curation(app, run.ledger, now + 10 * CURATE_GRACE_S) is False  # once

    other = Run(s.run_id + "-b", make_settings(run_id=s.run_id + "-b", auto_curate=True))
    other.ledger.mark_produced()
    assert other.maybe_finalize(app) is True  # published and marked sent in one go
    assert send_unsent_curation(app, other.ledger, now + 10 * CURATE_GRACE_S) is False
    assert len(app.sent) == 2


def test_the_background_sweep_sends_it(make_settings, celery_app):
    """``sweep_all`` (what every worker runs in the background) includes the unsent curation;
    the flag is written as an hour-old finalizer would have left it."""
    import time

    import redis

    from common import redis_keys
    from workers.lost import sweep_all

    s = make_settings(auto_curate=True)
    run, app = Run(s.run_id, s), _App()
    run.ledger.batch_enqueued(1)  # a run the sweep knows
    run.ledger.finish_batch("b1", {"headlines_done": 1})
    client = redis.Redis.from_url(s.redis_dsn(), decode_responses=True)
    client.set(f"{redis_keys.run(s.run_id)}:finalized", f"pending {time.time() - 3600}")
    reports = sweep_all(app, client, grace_s=60)
    assert reports[s.run_id].curate_sent
    assert (CURATE_TASK, [run.run_id], "curate", "curate") in app.sent
    assert run.ledger.unsent_for() is None
