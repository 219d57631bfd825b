"""Batches the broker lost are sent again (``workers.lost``), and only those.

The loss itself (kombu pops a message, then the worker or Redis dies before it lands in
``unacked``) is a millisecond race the real stack cannot be made to hit on demand: the tests
inject it by deleting the queued messages, the one fake the guide allows. Everything else is
real: Redis, the Celery app, worker processes, the result store.
"""

from __future__ import annotations

import base64
import json

import pytest
import redis
from test_pipeline import accounted, wait_done

from common import redis_keys
from common.ledger import RunLedger
from common.records import make_headline
from common.store import ResultStore
from producer.produce import Producer
from workers.lost import broker_batches, sweep_run


def _rows(n: int, tag: str) -> list[dict]:
    return [{"title": f"Acme {tag} Corp Beats Estimates {i}", "date": "2020-01-02",
             "stock_symbol": "ACME"} for i in range(n)]


def _produce(celery_app, s, n: int = 12, tag: str = "x") -> RunLedger:
    rep = Producer(celery_app, s).run(_rows(n, tag), "t")
    assert rep.enqueued == n
    return RunLedger.from_url(s.redis_dsn(), s.run_id)


def test_the_sweep_resends_only_what_is_in_no_queue(make_settings, celery_app) -> None:
    s = make_settings(batch_size=4)
    ledger = _produce(celery_app, s)  # 3 batches waiting in the queue, no worker
    r = redis.Redis.from_url(s.redis_dsn())
    copies = ledger.inflight_copies()
    assert len(copies) == 3 and all(len(c["headlines"]) == 4 for c in copies.values())
    assert {b for run, b in broker_batches(r, ["annotate"]) if run == s.run_id} == set(copies)

    # all in the queue: nothing is missing, nothing sent
    rep = sweep_run(celery_app, ledger, grace_s=5, now=1000.0)
    assert rep.resent == rep.missing == [] and r.llen("annotate") == 3

    # the broker loses two of them; one of the two is running (its lease is held): not lost
    lost, running, kept = sorted(copies)
    msgs = [json.loads(m) for m in r.lrange("annotate", 0, -1)]
    r.delete("annotate")
    for m in msgs:
        if json.loads(base64.b64decode(m["body"]))[0][1] == kept:
            r.lpush("annotate", json.dumps(m))
    r.set(redis_keys.batch_lease(s.run_id, running), "token", px=60_000)

    first = sweep_run(celery_app, ledger, grace_s=5, now=1000.0)
    assert first.missing == [lost] and first.resent == []  # seen missing once: wait
    assert sweep_run(celery_app, ledger, grace_s=5, now=1003.0).resent == []  # within grace
    second = sweep_run(celery_app, ledger, grace_s=5, now=1006.0)
    assert second.resent == [lost]
    in_queue = {b for run, b in broker_batches(r, ["annotate"]) if run == s.run_id}
    assert in_queue == {lost, kept}  # sent once more, with the same batch id
    assert ledger.stats()["resent_lost"] == 1
    assert ledger.stats()["batches_enqueued"] == 3  # the same batch: not counted again
    assert sweep_run(celery_app, ledger, grace_s=5, now=1100.0).resent == []  # queued now

    # a finished batch's copy is dropped, never sent again
    ledger.finish_batch(kept, {"headlines_done": 4})
    r.delete("annotate")
    rep = sweep_run(celery_app, ledger, grace_s=0, now=1200.0)
    assert kept not in ledger.inflight_copies() and kept not in rep.resent + rep.missing


@pytest.mark.slow
def test_a_run_whose_messages_the_broker_lost_still_finishes(
        fake_llm, make_settings, workers, celery_app, tmp_path) -> None:
    """Produce with no worker up, lose every queued message, then start a worker: its
    background sweep sends the batches again and each headline ends as exactly one result."""
    s = make_settings(llm_base_url=fake_llm.url, batch_size=5, lost_batch_sweep_s=1.0)
    ledger = _produce(celery_app, s, n=15, tag="lost")
    r = redis.Redis.from_url(s.redis_dsn())
    assert r.llen("annotate") == 3
    r.delete("annotate")
    w = workers(s)
    st = wait_done(ledger, 90, [w])
    assert st["resent_lost"] == 3 and st["batches_finished"] == 3, st
    store = ResultStore(s.results_dir, s.run_id)
    ids = {make_headline(row, "t").id for row in _rows(15, "lost")}
    accounted(store, ledger, ids)
    assert not ledger.inflight_copies()
    assert "sent again" in w.tail(20_000)
