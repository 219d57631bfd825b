"""What a worker saves per headline (``benchmarks/dispatch.py``) without changing what it sends
or stores: cache keys and request bytes equal to encoding the whole thing each time, cache
writes grouped into few round trips yet each awaited, clients kept by the process loop.

Real Redis (the test db of ``conftest.py``) and the fake endpoint; no mocks.
"""

from __future__ import annotations

import asyncio
import hashlib
import json

import pytest
import redis
import redis.asyncio as aioredis

from common import redis_keys
from common.records import Headline
from workers.annotate import aio
from workers.annotate.batch import annotate_headlines, batch_clients
from workers.annotate.cache_writes import GroupedSets
from workers.annotate.llm import LLMCaller
from workers.annotate.prompt import PROMPT_VERSION

TEXTS = ["Apple Beats Estimates", 'Ünïcode "quoted" \\ back\nslash </script>', ""]


def test_cache_keys_and_request_bytes_are_those_of_the_whole_body(make_settings):
    for style in ("llama.cpp", "openai", "none"):
        s = make_settings(llm_base_url="http://127.0.0.1:9", response_format=style)
        caller = LLMCaller(s, None, None)  # no Redis, no endpoint: only encodings
        for text in TEXTS:
            blob = json.dumps([s.llm_model, PROMPT_VERSION, caller.style, s.temperature,
                               s.max_tokens, caller.schema, text], sort_keys=True)
            want = redis_keys.llm_cache(hashlib.sha256(blob.encode()).hexdigest())
            assert caller.cache_key(text) == want  # earlier runs' cache entries still hit
            body = {**caller.request_body(text), "stream": False}
            assert caller.request_payload(text) == json.dumps(body).encode()


def test_grouped_cache_writes_take_few_round_trips_and_each_is_awaited(redis_url, run_id):
    async def go() -> tuple[int, list[int]]:
        # as the worker's: a bounded pool that makes a burst wait for a connection
        r = aioredis.Redis(connection_pool=aioredis.BlockingConnectionPool.from_url(
            redis_url, decode_responses=True, max_connections=20, timeout=60))
        pipelines = 0
        real = r.pipeline

        def counted(*a, **k):
            nonlocal pipelines
            pipelines += 1
            return real(*a, **k)

        r.pipeline = counted  # type: ignore[method-assign]
        writes = GroupedSets(r)

        async def one(i: int) -> int:
            await writes.set(f"{run_id}:k{i}", f"v{i}", 600)
            return int(await r.exists(f"{run_id}:k{i}"))  # in Redis once ``set`` returned

        present = await asyncio.gather(*(one(i) for i in range(200)))
        await r.aclose()
        return pipelines, present

    pipelines, present = asyncio.run(go())
    assert present == [1] * 200
    assert 1 <= pipelines <= 10
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    assert r.get(f"{run_id}:k7") == "v7" and 0 < r.ttl(f"{run_id}:k7") <= 600


def test_a_lost_group_of_cache_writes_fails_every_writer_in_it():
    async def go() -> list[BaseException | None]:
        r = aioredis.Redis.from_url("redis://127.0.0.1:9", socket_connect_timeout=1)
        writes = GroupedSets(r)
        out = await asyncio.gather(*(writes.set(f"k{i}", "v", 60) for i in range(5)),
                                   return_exceptions=True)
        await r.aclose()
        return out

    out = asyncio.run(go())
    assert all(isinstance(e, redis.ConnectionError) for e in out), out


def test_batches_on_the_process_loop_share_their_clients(fake_llm, make_settings, run_id):
    s = make_settings(llm_base_url=fake_llm.url, response_format="llama.cpp")

    async def clients():
        async with batch_clients(s) as c:
            return c

    first, second = aio.run(clients()), aio.run(clients())
    assert first is second  # one Redis pool and one HTTP session for every batch
    own = asyncio.run(clients())  # a loop of the caller's own: clients of its own, closed after
    assert own is not first

    heads = [Headline(id=f"{run_id}-{i}", text=f"Apple Beats {run_id} {i}") for i in range(6)]
    for part in (heads[:3], heads[3:]):
        out = aio.run(annotate_headlines(part, s))
        assert [r["companies"] for r in out.results] == [["Apple"]] * 3 and not out.failed
    again = aio.run(annotate_headlines(heads, s))  # every answer was cached by the first two
    assert [r["cached"] for r in again.results] == [True] * 6
    assert first.http._pooled is not None and not first.http._pooled.closed


if __name__ == "__main__":
    pytest.main([__file__, "-q"])


def test_a_started_worker_freezes_its_startup_heap():
    """Workers move their startup objects out of the collector's reach once started (full
    collections of that heap stalled the event loop for 130-240 ms under load): the handler is
    connected to the main process's and each prefork child's start, and it freezes."""
    import gc

    from celery.signals import worker_process_init, worker_ready

    from common.celery_app import freeze_startup_heap

    for signal in (worker_ready, worker_process_init):
        assert freeze_startup_heap in [r for _, r in signal.receivers], signal.name
    gc.unfreeze()
    try:
        freeze_startup_heap()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
