"""Happy paths of the annotate batch against a real OpenAI-compatible server (the replay server
of recorded answers, ``cascade.replay``), not the fault-injecting fake: a redelivered batch is
counted once and asks nothing, and a cached answer serves another run without a call. Calls are
read from the server's own ``/stats``; real Redis and result store."""

from __future__ import annotations

import httpx
from test_faults import run  # one batch through run_batch with its ledger and store

from cascade.replay import RECORDING, Recording
from common.records import make_headline
from common.store import ResultStore
from workers.annotate.batch import run_batch


def recorded(n: int, skip: int = 0) -> list[dict]:
    """``n`` headlines the recording answers (with companies), as the producer makes them."""
    rows = [r for r in Recording.load(RECORDING).rows.values() if r["entities"]][skip:skip + n]
    return [make_headline({"title": r["text"], "date": "2020-01-02", "stock_symbol": "A"},
                          f"t#{i}").model_dump() for i, r in enumerate(rows)]


def calls(url: str) -> int:
    stats = httpx.get(f"{url}/stats").json()
    return stats.get("answered", 0) + stats.get("missing", 0) + stats.get("bad_request", 0)


def settings_for(make_settings, replay: str, **over):
    s = make_settings(**over)
    # a model name of this run's own: answers another test cached are not this test's
    return s.model_copy(update={"llm_base_url": replay, "llm_model": f"replay-{s.run_id}"})


def test_redelivered_batch_is_counted_once_and_asks_nothing(replay, make_settings):
    s = settings_for(make_settings, replay)
    items = recorded(2)
    before = calls(replay)
    bid, out, ledger, store = run(s, items)
    assert calls(replay) == before + 2
    again = run_batch(s.run_id, bid, items, s)
    assert again["skipped"] == "already finished" and calls(replay) == before + 2
    assert ledger.stats()["headlines_done"] == 2
    assert sorted(r["id"] for r in store.iter_results()) == sorted(h["id"] for h in items)


def test_a_cached_answer_serves_another_run_without_a_call(replay, make_settings):
    s = settings_for(make_settings, replay)
    items = recorded(1, skip=5)
    run(s, items)
    (first,) = list(ResultStore(s.results_dir, s.run_id).iter_results())
    asked = calls(replay)
    s2 = s.model_copy(update={"run_id": s.run_id + "-b"})
    _, out, ledger, store = run(s2, items)
    assert calls(replay) == asked
    (r,) = list(store.iter_results())
    assert r["cached"] and ledger.stats()["cache_hits"] == 1
    assert r["entities"] == first["entities"] and r["entities"]
