"""Faults from the endpoint, injected by the fake server; the real Redis and result store."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from common.ledger import RunLedger
from common.records import make_headline
from common.store import ResultStore, batch_id
from workers.annotate.batch import run_batch
from workers.annotate.rate_limit import RedisRateLimiter


def headlines(*titles):
    return [make_headline({"title": t, "date": "2020-01-02", "stock_symbol": "A"}, f"t#{i}")
            .model_dump() for i, t in enumerate(titles)]


def run(settings, items):
    ledger = RunLedger.from_url(settings.redis_dsn(), settings.run_id)
    bid = batch_id(h["id"] for h in items)
    ledger.batch_enqueued(len(items))
    out = run_batch(settings.run_id, bid, items, settings)
    return bid, out, ledger, ResultStore(settings.results_dir, settings.run_id)


def test_transient_faults_are_retried_and_answers_kept(fake_llm, make_settings):
    s = make_settings(llm_base_url=fake_llm.url, max_retries=3)
    items = headlines("Mizuho Rates Autodesk #429x2", "Tesla Recalls Cars #500x1",
                      "Adobe Slips #timeoutx1", "Broadcom Rises #badjson", "Cisco Falls #schema",
                      "Intel Gains #halluc", "10 Biggest Movers Today")
    bid, out, ledger, store = run(s, items)
    res = {r["text"]: r for r in store.iter_results()}
    assert len(res) == len(items) and not list(store.iter_dead())
    assert [e["text"] for e in res["Mizuho Rates Autodesk #429x2"]["entities"]] == ["Mizuho"]
    assert res["Mizuho Rates Autodesk #429x2"]["retries"] == 2
    assert res["Tesla Recalls Cars #500x1"]["valid"] and res["Adobe Slips #timeoutx1"]["valid"]
    bad = res["Broadcom Rises #badjson"]
    assert not bad["valid"] and bad["raw"].startswith('{"result"') and bad["entities"] == []
    assert not res["Cisco Falls #schema"]["valid"]
    assert res["Intel Gains #halluc"]["hallucinated"] == ["Nonexistent Corp"]
    assert [e["text"] for e in res["Intel Gains #halluc"]["entities"]] == ["Intel"]
    for r in res.values():
        for e in r["entities"]:
            assert r["text"][e["start"]:e["end"]] == e["text"]
    st = ledger.stats()
    assert st["headlines_done"] == 7 and st["invalid"] == 2 and st["hallucinated"] == 1
    assert st["retries"] == 4 and st["batches_finished"] == 1 and st["headlines_dead"] == 0


def test_permanent_failures_are_dead_lettered_then_requeued(fake_llm, make_settings, celery_app):
    from producer.requeue import requeue_dead

    s = make_settings(llm_base_url=fake_llm.url, max_retries=1)
    items = headlines("Oracle Up #down", "Nvidia Down #400", "Alcoa Rallies")
    bid, out, ledger, store = run(s, items)
    dead = list(store.iter_dead())
    assert len(dead) == 1 and {h["text"] for h in dead[0]["headlines"]} == {
        "Oracle Up #down", "Nvidia Down #400"}
    assert "HTTP 500" in dead[0]["error"] and "HTTP 400" in dead[0]["error"]
    assert [r["text"] for r in store.iter_results()] == ["Alcoa Rallies"]
    st = ledger.stats()
    assert (st["headlines_done"], st["headlines_dead"], st["batches_dead"]) == (1, 2, 1)

    # requeue sends them back as a new batch; nothing is lost, nothing counted twice
    celery_app.connection_for_write().default_channel.client.delete("annotate")
    b, h = requeue_dead(celery_app, s, s.run_id)
    assert (b, h) == (1, 2) and not list(store.iter_dead())
    st = ledger.stats()
    assert st["headlines_dead"] == 0 and st["batches_dead"] == 0 and ledger.in_flight() == 1
    # the endpoint is healthy again: process the requeued batch as a worker would
    healed = [dict(x, text=x["text"].replace(" #down", "").replace(" #400", ""))
              for x in dead[0]["headlines"]]
    run_batch(s.run_id, f"{bid}-r1", healed, s)
    st = ledger.stats()
    assert st["headlines_done"] == 3 and st["headlines_dead"] == 0 and ledger.in_flight() == 0
    assert st["headlines_enqueued"] == st["headlines_done"] + st["headlines_dead"]


def test_global_rate_limiter_is_shared_between_workers(redis_url, run_id):
    async def go():
        r1 = aioredis.Redis.from_url(redis_url, decode_responses=True)
        r2 = aioredis.Redis.from_url(redis_url, decode_responses=True)
        a = RedisRateLimiter(r1, f"tt:test:{run_id}", rate=1.0, capacity=3)
        b = RedisRateLimiter(r2, f"tt:test:{run_id}", rate=1.0, capacity=3)  # another "worker"
        grants = [await x.try_acquire() for x in (a, b, a)]
        over = await b.try_acquire()
        await r1.aclose()
        await r2.aclose()
        return grants, over

    grants, over = asyncio.run(go())
    assert grants == [0.0, 0.0, 0.0]
    # the 4th request must wait, wherever it runs, and never longer than one token takes (1 s);
    # how long it waits depends on how fast the first three came (benchmarks/ratelimit.py)
    assert 0 < over <= 1.0


def test_a_batch_far_larger_than_the_concurrency_cap(fake_llm, make_settings):
    """Regression: 1,000 headlines with a cap of 20 must not exhaust Redis connections."""
    s = make_settings(llm_base_url=fake_llm.url, concurrency=20)
    items = headlines(*[f"Acme Holdings Beats In Quarter {i} {s.run_id}" for i in range(1000)])
    bid, out, ledger, store = run(s, items)
    assert ledger.stats()["headlines_done"] == 1000 and not list(store.iter_dead())


def test_an_invalid_answer_is_not_cached_so_a_rerun_asks_again(fake_llm, make_settings):
    """An invalid answer was cached for 30 days: every requeue and rerun got it back unasked."""
    s = make_settings(llm_base_url=fake_llm.url, max_retries=0)
    bad, good = f"Broadcom Rises #badjson {s.run_id}", f"Cisco Falls {s.run_id}"
    run(s, headlines(bad, good))
    assert fake_llm.calls[bad] == 1 and fake_llm.calls[good] == 1
    s2 = make_settings(llm_base_url=fake_llm.url, max_retries=0, run_id=s.run_id + "-again")
    _, out, _, store = run(s2, headlines(bad, good))
    assert fake_llm.calls[bad] == 2  # asked again: the invalid answer was not final
    assert fake_llm.calls[good] == 1  # the valid one came from the cache
    res = {r["text"]: r for r in store.iter_results()}
    assert res[good]["cached"] and not res[bad]["cached"]
