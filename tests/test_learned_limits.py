"""Limits learned from the endpoint's own headers hold every worker on every host back to what
it grants, never let more through than the configured limit, and keep Retry-After."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest
import redis.asyncio as aioredis
from fake_llm import FakeLLM

from common.ledger import RunLedger
from producer.produce import Producer
from workers.annotate.client import make_client
from workers.annotate.llm import LLMCaller
from workers.annotate.rate_headers import Grant
from workers.annotate.rate_limit import EndpointLimits, RedisRateLimiter


def limiter(r: aioredis.Redis, run_id: str, rate: float = 0.0, capacity: float = 1.0):
    return RedisRateLimiter(r, f"tt:test:{run_id}", rate=rate, capacity=capacity)


def run_async(redis_url: str, body):
    async def go():
        r = aioredis.Redis.from_url(redis_url, decode_responses=True)
        try:
            return await body(r)
        finally:
            await r.aclose()

    return asyncio.run(go())


def test_a_grant_holds_every_process_to_remaining_until_reset(redis_url, run_id):
    async def body(r):
        a = limiter(r, run_id)
        assert await a.try_take() == (0.0, None)  # nothing learned yet: no gate, no ticket
        await a.learn(Grant(limit=3, remaining=2, reset_s=0.6), None)
        b = limiter(r, run_id)  # another process, never told anything itself
        return [await x.try_take() for x in (a, b, a)]

    got = run_async(redis_url, body)
    assert [w for w, _ in got[:2]] == [0.0, 0.0]
    assert 0.4 < got[2][0] <= 0.6 and got[2][1] is None  # the third waits for the reset


def test_the_window_refills_to_the_limit_at_reset(redis_url, run_id):
    async def body(r):
        a = limiter(r, run_id)
        await a.learn(Grant(limit=2, remaining=0, reset_s=1.0), None)
        first = await a.try_acquire()
        await asyncio.sleep(1.05)
        return first, [await a.try_acquire() for _ in range(3)]

    first, after = run_async(redis_url, body)
    assert 0.8 < first <= 1.0
    assert after[:2] == [0.0, 0.0]  # the limit again
    assert 0.5 < after[2] <= 0.95  # then the next window, one window after the last


def test_units_granted_after_a_request_are_taken_off_what_its_response_saw(redis_url, run_id):
    """Three requests in flight; the first one's answer says 4 left: only 2 more may go."""
    async def body(r):
        a = limiter(r, run_id, rate=100.0, capacity=100.0)
        tickets = [(await a.take())[1] for _ in range(3)]
        await a.learn(Grant(limit=10, remaining=4, reset_s=5.0), tickets[0])
        return [await a.try_acquire() for _ in range(3)]

    got = run_async(redis_url, body)
    assert got[:2] == [0.0, 0.0] and got[2] > 4.0


def test_an_answer_from_a_closed_window_changes_nothing(redis_url, run_id):
    async def body(r):
        a = limiter(r, run_id)
        await a.learn(Grant(limit=5, remaining=5, reset_s=1.0), None)
        _, old = await a.take()
        await asyncio.sleep(1.05)  # that window closes; the next one is 5 again
        await a.take()
        # a late answer to the old request: "0 left, reset in 1 ms" would, if believed,
        # end the window now and grant 5 more on top of the one just sent
        await a.learn(Grant(limit=5, remaining=0, reset_s=0.001), old)
        return [await a.try_acquire() for _ in range(5)]

    got = run_async(redis_url, body)
    assert got[:4] == [0.0] * 4 and got[4] > 0.5  # 1 + 4 = the window's 5


def test_learned_limits_never_raise_the_configured_one(redis_url, run_id):
    async def body(r):
        a = limiter(r, run_id, rate=2.0, capacity=2.0)
        await a.learn(Grant(limit=1000, remaining=1000, reset_s=60.0), None)
        return [await a.try_acquire() for _ in range(3)]

    got = run_async(redis_url, body)
    assert got[:2] == [0.0, 0.0] and 0.4 < got[2] <= 0.5  # the configured 2/s, not 1000


def test_token_headers_hold_the_token_gate_only(redis_url, run_id):
    async def body(r):
        limits = EndpointLimits(r, f"http://test-{run_id}", rps=0, tpm=0)
        permit = await limits.acquire(80)  # nothing learned yet: passes
        await limits.learn({"x-ratelimit-limit-tokens": "1000",
                            "x-ratelimit-remaining-tokens": "100",
                            "x-ratelimit-reset-tokens": "6m0s"}, permit)
        tokens = limits.gates["tokens"]
        return ([await tokens.try_acquire(80) for _ in range(2)],
                await limits.gates["requests"].try_acquire())

    tokens, request = run_async(redis_url, body)
    assert tokens[0] == 0.0 and 359.0 < tokens[1] <= 360.0  # 100 left: 80, then not 80 more
    assert request == 0.0  # no request limit was announced


def per_window(log: list[tuple[float, int, str]], window_s: float = 1.0) -> list[Counter]:
    """Requests (by status) in each of the server's windows, the first starting at its first
    request, as the server counts them."""
    log = sorted(log)  # kept in the order answered; a slow answer may have come in first
    t0 = log[0][0]
    n = int((log[-1][0] - t0) // window_s) + 1
    out = [Counter() for _ in range(n)]
    for t, status, _ in log:
        out[int((t - t0) // window_s)][status] += 1
    return out


def assert_kept_to_the_grant(log: list[tuple[float, int, str]], answered: int) -> None:
    """After the first second (before any answer told the limit) no window holds more than the
    grant of 5 or any 429; the grant is used; a 429's Retry-After (1 s) is waited out."""
    windows = per_window(log)
    assert sum(w[200] for w in windows) == answered
    for k, w in enumerate(windows[1:], 1):
        assert w[429] == 0 and w.total() <= 5, (k, windows)
    assert max(w[200] for w in windows) == 5, windows  # the grant is used, not just kept
    for t, status, text in log:
        if status == 429:
            again = min(t2 for t2, _, text2 in log if text2 == text and t2 > t)
            assert again - t >= 1.0, (text, again - t)


def test_anthropic_grants_hold_concurrent_callers_in_one_process(make_settings):
    """Two callers with their own Redis clients (as two processes would), 40 headlines at once,
    an endpoint granting 5 requests/s in Anthropic's headers, a configured limit of 50/s."""
    fake = FakeLLM(latency=0.01, grant=5, grant_style="anthropic").start()
    s = make_settings(llm_base_url=fake.url, rate_limit_rps=50, concurrency=16, max_retries=4,
                      backoff_base_s=0.05, backoff_max_s=2.0)

    async def go():
        rs = [aioredis.Redis.from_url(s.redis_dsn(), decode_responses=True) for _ in range(2)]
        clients = [make_client(s) for _ in range(2)]
        callers = [LLMCaller(s, r, c) for r, c in zip(rs, clients, strict=True)]
        texts = [f"Initech Window {s.run_id} {i}" for i in range(40)]
        try:
            return await asyncio.gather(*(callers[i % 2].call(t) for i, t in enumerate(texts)))
        finally:
            for r, c in zip(rs, clients, strict=True):
                await c.close()
                await r.aclose()

    try:
        answers = asyncio.run(go())
    finally:
        fake.stop()
    assert len(answers) == 40 and all(a.content for a in answers)
    assert_kept_to_the_grant(fake.log, 40)


@pytest.mark.slow
def test_four_worker_processes_keep_to_what_the_endpoint_grants(make_settings, workers,
                                                                  celery_app):
    """4 Celery worker processes, a configured limit of 20/s, an endpoint granting 5 requests/s
    in OpenAI's headers: after the first second no window of the server's own log holds more
    than 5 requests and none is answered 429; the 429s of the first second wait out their
    Retry-After."""
    fake = FakeLLM(latency=0.02, grant=5).start()
    try:
        s = make_settings(llm_base_url=fake.url, batch_size=5, concurrency=8, rate_limit_rps=20,
                          max_retries=4, backoff_base_s=0.01, backoff_max_s=5)
        titles = [f"Globex Granted {s.run_id} {i}" for i in range(40)]
        ws = [workers(s, concurrency=2) for _ in range(4)]
        Producer(celery_app, s).run([{"title": t} for t in titles], "granted")
        ledger = RunLedger.from_url(s.redis_dsn(), s.run_id)
        deadline = time.monotonic() + 120
        while not (ledger.stats()["batches_enqueued"] and ledger.settled()):
            assert time.monotonic() < deadline, ledger.stats()
            for p in ws:
                assert p.alive(), p.tail()
            time.sleep(0.3)
        st = ledger.stats()
        log = list(fake.log)
    finally:
        fake.stop()
    assert st["headlines_done"] == 40 and st["headlines_dead"] == 0
    assert_kept_to_the_grant(log, 40)
