"""Two ``tickertag requeue`` runs at once on the same dead letters.

Each dead letter must reach the queue exactly once in total, neither run may crash, and each
run reports only what it sent itself: the two reports add up to the dead letters, no more.
"""

from __future__ import annotations

import base64
import json
import threading
from collections import Counter

import redis

from common.ledger import RunLedger
from common.store import ResultStore
from common.task_names import ANNOTATE_TASK
from producer.requeue import requeue_dead

N_DEAD = 40
HEADLINES_PER_LETTER = 2


def _dead_run(settings) -> tuple[ResultStore, RunLedger]:
    """A run whose every batch died: dead letters on disk, dead batches in the ledger."""
    store = ResultStore(settings.results_dir, settings.run_id)
    ledger = RunLedger.from_url(settings.redis_dsn(), settings.run_id)
    for i in range(N_DEAD):
        bid = f"dead{i:03d}"
        items = [{"id": f"{bid}-h{j}", "text": f"Acme {i} {j}"}
                 for j in range(HEADLINES_PER_LETTER)]
        ledger.batch_enqueued(len(items))
        ledger.finish_batch(bid, {"headlines_dead": len(items)}, dead=True)
        store.write_dead(bid, items, "HTTP 500", "http", 2, ANNOTATE_TASK)
    return store, ledger


def _queued_batch_ids(redis_url: str) -> Counter[str]:
    """Batch ids of the messages waiting in the annotate queue (second task argument)."""
    r = redis.Redis.from_url(redis_url)
    return Counter(json.loads(base64.b64decode(json.loads(m)["body"]))[0][1]
                   for m in r.lrange("annotate", 0, -1))


def _requeue_twice_at_once(app, settings) -> tuple[list[tuple[int, int]], list[BaseException]]:
    """Start two requeues of the same run behind a barrier; their reports and any errors."""
    barrier = threading.Barrier(2)
    reports: list[tuple[int, int]] = []
    errors: list[BaseException] = []

    def go() -> None:
        barrier.wait()
        try:
            reports.append(requeue_dead(app, settings, settings.run_id))
        except BaseException as e:  # the test reports whatever escaped
            errors.append(e)

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return reports, errors


def test_two_requeues_at_once_send_each_dead_letter_exactly_once(make_settings, celery_app,
                                                                 redis_url):
    s = make_settings()
    store, ledger = _dead_run(s)

    reports, errors = _requeue_twice_at_once(celery_app, s)

    assert errors == []
    assert len(reports) == 2
    assert sum(b for b, _ in reports) == N_DEAD
    assert sum(h for _, h in reports) == N_DEAD * HEADLINES_PER_LETTER
    assert _queued_batch_ids(redis_url) == Counter({f"dead{i:03d}-r1": 1 for i in range(N_DEAD)})
    assert list(store.iter_dead()) == []
    assert len(store.fs.glob(store._p("dead", "requeued", "*.json"))) == N_DEAD
    st = ledger.stats()
    assert (st["batches_dead"], st["headlines_dead"]) == (0, 0)
    assert st["requeued"] == N_DEAD * HEADLINES_PER_LETTER
    assert st["batches_enqueued"] == 2 * N_DEAD
    assert set(ledger.inflight_copies()) == {f"dead{i:03d}-r1" for i in range(N_DEAD)}
    assert requeue_dead(celery_app, s, s.run_id) == (0, 0)  # nothing left to send
    ledger.reset()


def test_a_letter_claimed_elsewhere_or_gone_is_left_to_the_other_requeue(
        make_settings, celery_app, redis_url, monkeypatch):
    """Deterministic halves of the race: a letter whose claim another requeue holds is not
    sent, and a listed letter that is gone by the time it is read is skipped, not a crash."""
    s = make_settings()
    store, ledger = _dead_run(s)
    assert ledger.claim_dead("dead000", "the-other-requeue")
    listed = ResultStore.dead_ids
    monkeypatch.setattr(ResultStore, "dead_ids", lambda self: [*listed(self), "moved-away"])

    assert requeue_dead(celery_app, s, s.run_id) == (N_DEAD - 1,
                                                     (N_DEAD - 1) * HEADLINES_PER_LETTER)

    assert _queued_batch_ids(redis_url) == Counter(
        {f"dead{i:03d}-r1": 1 for i in range(1, N_DEAD)})
    assert [d["batch_id"] for d in store.iter_dead()] == ["dead000"]
    ledger.release_dead("dead000", "someone-else")  # not the holder: the claim stays
    assert requeue_dead(celery_app, s, s.run_id) == (0, 0)
    ledger.release_dead("dead000", "the-other-requeue")
    assert requeue_dead(celery_app, s, s.run_id) == (1, HEADLINES_PER_LETTER)
    assert _queued_batch_ids(redis_url)["dead000-r1"] == 1
    ledger.reset()
