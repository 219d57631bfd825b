"""A batch's outcome replaces whatever an earlier attempt of the same batch left in the store.

A batch id is a hash of its headline ids, so every attempt (a retry, a redelivery after the
shard was written but before the ledger recorded it) writes the same shard and dead-letter
paths. ``run_batch`` must leave each headline in exactly one of them: a batch that now fails
whole drops the earlier shard, and one that now succeeds drops the earlier dead letter.

No LLM server: the failing attempt calls a port nobody listens on (a real connection error,
no retries), the succeeding one finds its answers in the real Redis LLM cache, which the
worker reads before calling anything. Redis is the test db of ``conftest.py``.
"""

from __future__ import annotations

import json

import redis

from common.ledger import RunLedger
from common.records import Headline
from common.store import ResultStore, batch_id
from workers.annotate.batch import build_result, run_batch
from workers.annotate.llm import LLMAnswer, LLMCaller

UNREACHABLE = "http://127.0.0.1:9"  # the discard port: connection refused at once
ANSWER = json.dumps({"result": ["Apple"], "normalized_result": ["Apple Inc."]})


def _batch(run_id: str) -> tuple[str, list[dict]]:
    # the run id in the text keeps these headlines out of any other test's LLM cache entries
    heads = [{"id": f"{run_id}-1", "text": f"Apple Beats Estimates {run_id}"},
             {"id": f"{run_id}-2", "text": f"Apple Cuts Prices {run_id}"}]
    return batch_id(h["id"] for h in heads), heads


def test_a_batch_that_now_fails_whole_leaves_no_result_from_an_earlier_attempt(make_settings):
    s = make_settings(llm_base_url=UNREACHABLE, max_retries=0, auto_curate=False)
    bid, heads = _batch(s.run_id)
    store = ResultStore(s.results_dir, s.run_id)
    # an earlier attempt answered both headlines and wrote the shard, then its worker died
    # before the ledger recorded the batch: the batch comes back
    earlier = [build_result(Headline.model_validate(h), LLMAnswer(ANSWER), s, "json_schema")
               for h in heads]
    store.write_results(bid, earlier)
    assert sorted(store.done_ids()) == [h["id"] for h in heads]

    out = run_batch(s.run_id, bid, heads, s)

    assert (out["headlines_done"], out["headlines_dead"]) == (0, 2)
    assert list(store.iter_results()) == []  # not a result and a dead letter at once
    (dead,) = store.iter_dead()
    assert dead["batch_id"] == bid and dead["error_type"] == "connection"
    assert [h["id"] for h in dead["headlines"]] == [h["id"] for h in heads]
    assert dead["attempts"] == 1
    st = RunLedger.from_url(s.redis_dsn(), s.run_id).stats()
    assert (st["batches_dead"], st["headlines_dead"], st["headlines_done"]) == (1, 2, 0)


def test_a_batch_that_now_succeeds_leaves_no_dead_letter_from_an_earlier_attempt(make_settings):
    s = make_settings(llm_base_url=UNREACHABLE, max_retries=0, auto_curate=False)
    bid, heads = _batch(s.run_id)
    store = ResultStore(s.results_dir, s.run_id)
    store.write_dead(bid, heads, error="connection: refused", error_type="connection",
                     attempts=1)
    # the answers are now in the LLM cache (as another run's worker would have left them)
    caller = LLMCaller(s, None, None)  # only its cache key is used: no Redis, no endpoint
    r = redis.Redis.from_url(s.redis_dsn())
    for h in heads:
        r.set(caller.cache_key(h["text"]), json.dumps({"content": ANSWER, "pt": 10, "ct": 5}),
              ex=60)

    out = run_batch(s.run_id, bid, heads, s)

    assert (out["headlines_done"], out["headlines_dead"], out["cache_hits"]) == (2, 0, 2)
    assert list(store.iter_dead()) == []
    results = sorted(store.iter_results(), key=lambda x: x["id"])
    assert [x["id"] for x in results] == [h["id"] for h in heads]
    assert [[(e["start"], e["end"], e["text"]) for e in x["entities"]] for x in results] == [
        [(0, 5, "Apple")], [(0, 5, "Apple")]]
    st = RunLedger.from_url(s.redis_dsn(), s.run_id).stats()
    assert (st["batches_dead"], st["headlines_dead"], st["headlines_done"]) == (0, 0, 2)
