"""Reliability and security of the distributed path: producer crash, Redis restart with
persistence, a password-protected Redis, JSON-only broker, secrets kept out of everything."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from test_pipeline import accounted, wait_done
from worker_env import settings_env

from common.ledger import RunLedger
from common.services import ManagedProcess, free_port, redis_server_binary, wait_until
from common.store import ResultStore
from producer.produce import Producer

CANARY = "hf_CANARY_d0_not_leak_7f3a9"


def test_killed_producer_resumes_without_loss_or_duplicates(fake_llm, make_settings, workers,
                                                            celery_app, tmp_path: Path):
    s = make_settings(llm_base_url=fake_llm.url, batch_size=5, max_batches_in_flight=2)
    src = tmp_path / "h.jsonl"
    titles = [f"Globex {i} Corp Raises Guidance {s.run_id}" for i in range(40)]
    src.write_text("".join(json.dumps({"title": t}) + "\n" for t in titles))
    env = {**settings_env(s), "TICKERTAG_BATCH_SIZE": "5", "TICKERTAG_MAX_BATCHES_IN_FLIGHT": "2"}
    # no worker yet: the producer fills 2 batches, claims a 3rd and blocks on backpressure
    prod = ManagedProcess("producer", [sys.executable, "-m", "tickertag", "produce", str(src),
                                       "--run", s.run_id], tmp_path / "producer.log", env=env)
    ledger = RunLedger.from_url(s.redis_dsn(), s.run_id)
    # the 3rd batch claimed and blocked (not the 1st caught between its claim and its send)
    wait_until(lambda: ledger.pending_batches() and ledger.stats()["batches_enqueued"] == 2, 60,
               "a pending batch", prod)
    prod.kill()
    assert ledger.stats()["batches_enqueued"] == 2
    workers(s)
    rep = Producer(celery_app, s).run(({"title": t} for t in titles), "h.jsonl")
    assert rep.resent_pending == 5 and rep.enqueued == 25
    st = wait_done(ledger, 60)
    store = ResultStore(s.results_dir, s.run_id)
    accounted(store, ledger, {r["id"] for r in store.iter_results()})
    assert st["headlines_done"] == 40 and st["headlines_enqueued"] == 40


@pytest.mark.slow  # restarts a Redis server twice (~40 s)
def test_redis_restart_with_persistence_and_password(fake_llm, tmp_path: Path, make_settings,
                                                     run_id):
    """A password-protected Redis with AOF is SIGKILLed mid-run and restarted: nothing lost."""
    port, pw = free_port(), "s3cret-pw"
    data = tmp_path / "redis-data"
    data.mkdir()
    argv = [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data),
            "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--requirepass", pw]
    url = f"redis://:{pw}@127.0.0.1:{port}/0"

    def up() -> ManagedProcess:
        p = ManagedProcess("redis", argv, tmp_path / "redis.log")
        wait_until(lambda: redis.Redis.from_url(url).ping(), 20, "redis", p)
        return p

    srv = up()
    assert not _can_connect_without_password(port)
    s = make_settings(redis_url=url, llm_base_url=fake_llm.url, batch_size=4, concurrency=2,
                      visibility_timeout_s=8)
    fake_llm.latency = 0.3
    code = (
        "import sys, json\n"
        "from common.celery_app import app\n"
        "from common.settings import get_settings\n"
        "from producer.produce import Producer\n"
        "rows = [{'title': f'Initech {i} Wins Contract " + run_id + "'} for i in range(24)]\n"
        "print(json.dumps(Producer(app, get_settings()).run(rows, 'x').__dict__))\n"
    )
    env = {**settings_env(s), "TICKERTAG_RUN_ID": s.run_id, "TICKERTAG_BATCH_SIZE": "4",
           "TICKERTAG_VISIBILITY_TIMEOUT_S": "8"}
    from common.services import start_worker

    w = start_worker("annotate", tmp_path / "logs", concurrency=2, env=env)
    try:
        out = subprocess.run([sys.executable, "-c", code], env={**__import__("os").environ, **env},
                             capture_output=True, text=True, timeout=60, check=True)
        assert json.loads(out.stdout.strip().splitlines()[-1])["enqueued"] == 24
        ledger = RunLedger(redis.Redis.from_url(url, decode_responses=True), s.run_id)
        wait_until(lambda: ledger.stats()["batches_finished"] >= 1, 30, "first batch", w)
        srv.kill()  # crash, not shutdown
        time.sleep(1.0)
        srv = up()
        ledger = RunLedger(redis.Redis.from_url(url, decode_responses=True), s.run_id)
        st = wait_done(ledger, 120, [w])
        store = ResultStore(s.results_dir, s.run_id)
        ids = {r["id"] for r in store.iter_results()}
        assert len(ids) == 24 and st["headlines_done"] == 24
        accounted(store, ledger, ids)
    finally:
        fake_llm.latency = 0.0
        w.stop()
        srv.stop()


def _can_connect_without_password(port: int) -> bool:
    try:
        redis.Redis(host="127.0.0.1", port=port).ping()
        return True
    except redis.AuthenticationError:
        return False
    except redis.ResponseError:
        return False


def test_broker_accepts_json_only(celery_app):
    assert celery_app.conf.accept_content == ["json"]
    assert celery_app.conf.task_serializer == "json" == celery_app.conf.result_serializer


def _decoded_messages(raw: list[bytes]) -> str:
    """Kombu messages as text: the envelope JSON plus its base64 body decoded (grepping the
    raw list would miss a token inside the base64 body)."""
    import base64

    out = []
    for m in raw:
        env = json.loads(m)
        out.append(json.dumps(env))
        out.append(base64.b64decode(env["body"]).decode(errors="replace"))
    return "\n".join(out)


def _all_values(r: redis.Redis) -> str:
    """Every key's value read by its type, not DUMP (LZF-compressed: a grep can miss a token)."""
    out = []
    for k in r.scan_iter("*"):
        t = r.type(k)
        if t == b"string":
            out.append(r.get(k) or b"")
        elif t == b"hash":
            out += [b"%s=%s" % kv for kv in r.hgetall(k).items()]
        elif t == b"list":
            out += r.lrange(k, 0, -1)
        elif t == b"set":
            out += list(r.smembers(k))
        elif t == b"zset":
            out += r.zrange(k, 0, -1)
    text = b"\n".join(out).decode(errors="replace")
    try:  # queued messages again, decoded
        text += _decoded_messages([v for v in out if v.startswith(b'{"body"')])
    except (ValueError, KeyError):
        pass
    return text


def test_token_never_in_task_args_results_logs_or_broker(fake_llm, make_settings, celery_app,
                                                         redis_url):
    from common.services import start_worker

    s = make_settings(llm_base_url=fake_llm.url)
    r = redis.Redis.from_url(redis_url)
    Producer(celery_app, s).run([{"title": f"Hooli Beats Estimates {s.run_id}"}], "x")
    queued = _decoded_messages(r.lrange("annotate", 0, -1))  # read before a worker takes it
    assert queued and "Hooli Beats Estimates" in queued  # the scan can see a body
    assert CANARY not in queued
    # the worker gets the token through its environment only, as a deployment would
    w = start_worker("annotate", Path(s.results_dir) / "logs",
                     env={**settings_env(s), "HF_TOKEN": CANARY})
    try:
        st = wait_done(RunLedger.from_url(s.redis_dsn(), s.run_id), 60, [w])
        assert st["headlines_done"] == 1
        stored = _all_values(r)
        assert "Hooli" in stored and CANARY not in stored  # the cached answer is readable
    finally:
        w.stop()
    assert CANARY not in w.log_path.read_text(errors="replace")
    store = ResultStore(s.results_dir, s.run_id)
    assert CANARY not in json.dumps(list(store.iter_results()))
    from common.settings import Settings

    cfg = Settings(hf_token=CANARY)
    assert CANARY not in repr(cfg) and CANARY not in str(cfg.model_dump())


def test_hf_token_goes_only_to_hugging_face_hosts(fake_llm, make_settings, monkeypatch):
    """A canary HF_TOKEN must never reach a plain loopback endpoint (it did, as ``Bearer``);
    an endpoint's own key, named for it, does; a Hugging Face host gets the HF token."""
    import asyncio

    from workers.annotate.client import endpoint_token, make_client

    CANARY = "hf_canary_scope_7f3a"
    monkeypatch.setenv("HF_TOKEN", CANARY)  # huggingface_hub would read it by itself

    async def ask(s) -> None:
        async with make_client(s) as c:
            await c.chat_completion(messages=[{"role": "user", "content": "Headline: Acme Up"}],
                                    model="fake", max_tokens=8)

    fake_llm.authorization.clear()
    asyncio.run(ask(make_settings(llm_base_url=fake_llm.url, hf_token=CANARY)))
    assert fake_llm.authorization and not any(CANARY in h for h in fake_llm.authorization)
    asyncio.run(ask(make_settings(llm_base_url=fake_llm.url, hf_token=CANARY,
                                  llm_api_key="endpoint-key-1")))
    assert fake_llm.authorization["Bearer endpoint-key-1"] == 1
    hf = make_settings(llm_base_url="https://xyz.us-east-1.aws.endpoints.huggingface.cloud",
                       hf_token=CANARY)
    assert endpoint_token(hf) == CANARY
    for url in ("http://xyz.endpoints.huggingface.cloud", "https://huggingface.cloud.evil.io",
                "https://evilhuggingface.co"):
        assert endpoint_token(make_settings(llm_base_url=url, hf_token=CANARY)) is None


@pytest.mark.slow  # its own Redis, a worker, two producer processes (~30 s)
def test_a_lost_aof_tail_is_re_sent_by_the_next_producer_run(fake_llm, tmp_path: Path,
                                                              make_settings, run_id):
    """The compose Redis fsyncs its AOF every second: a crash may lose the last second. Here
    the tail from the last batch's publish on is cut off the AOF: Redis comes back without
    that message, without the 'sent' record and without 'produced_at', so the run cannot
    finalize; the next producer run re-sends the batch Redis forgot (it is still pending in the
    ledger) and every headline ends as exactly one result."""
    from common.services import start_worker

    port = free_port()
    data = tmp_path / "redis-data"
    data.mkdir()
    argv = [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data),
            "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]
    url = f"redis://127.0.0.1:{port}/0"

    def up() -> ManagedProcess:
        p = ManagedProcess("redis", argv, tmp_path / "redis.log")
        wait_until(lambda: redis.Redis.from_url(url).ping(), 20, "redis", p)
        return p

    srv = up()
    s = make_settings(redis_url=url, llm_base_url=fake_llm.url, batch_size=8)
    env = {**settings_env(s), "TICKERTAG_RUN_ID": s.run_id, "TICKERTAG_BATCH_SIZE": "8"}
    code = (
        "import json\n"
        "from common.celery_app import app\n"
        "from common.settings import get_settings\n"
        "from producer.produce import Producer\n"
        "rows = [{'title': f'Hooli {i} Beats Estimates " + run_id + "'} for i in range(32)]\n"
        "print(json.dumps(Producer(app, get_settings()).run(rows, 'x').__dict__))\n"
    )

    def produce() -> dict:
        out = subprocess.run([sys.executable, "-c", code],
                             env={**__import__("os").environ, **env}, capture_output=True,
                             text=True, timeout=60, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    w = None
    try:
        assert produce()["enqueued"] == 32  # 4 batches, no worker yet
        # everysec: wait until the whole run is on disk (4 pushes; a slow fsync delays it)
        wait_until(lambda: sum(f.read_bytes().count(b"\r\nLPUSH\r\n") for f in (
            data / "appendonlydir").glob("*.incr.aof")) >= 4, 30, "the AOF holding 4 batches")
        time.sleep(1.5)  # and what followed the last push (the run's "produced")
        srv.kill()
        (aof,) = sorted((data / "appendonlydir").glob("*.incr.aof"))
        raw = aof.read_bytes()
        last_push = raw.rindex(b"\r\nLPUSH\r\n")
        cut = raw.rindex(b"*", 0, last_push)  # the start of that command
        aof.write_bytes(raw[:cut])  # the last second, lost
        srv = up()
        r = redis.Redis.from_url(url, decode_responses=True)
        ledger = RunLedger(r, s.run_id)
        assert r.llen("annotate") == 3 and len(ledger.pending_batches()) == 1
        assert not ledger.stats().get("produced_at") and not ledger.try_finalize()
        w = start_worker("annotate", tmp_path / "logs", concurrency=2, env=env)
        wait_until(lambda: ledger.stats()["batches_finished"] >= 3, 60, "3 batches", w)
        assert not ledger.try_finalize()  # still missing the forgotten batch
        again = produce()
        assert again["resent_pending"] == 8 and again["enqueued"] == 0
        st = wait_done(ledger, 60, [w])
        store = ResultStore(s.results_dir, s.run_id)
        ids = {r["id"] for r in store.iter_results()}
        assert len(ids) == 32 and st["headlines_done"] == 32
        accounted(store, ledger, ids)
        # The first producer's "done" was in the lost tail too, so its heartbeat stays until it
        # is PRODUCER_TTL_S old; then the run finalizes, once.
        from common.ledger import PRODUCER_TTL_S

        assert ledger.live_producers() == 1 and not ledger.try_finalize()
        later = time.time() + PRODUCER_TTL_S + 1
        assert ledger.try_finalize(now=later) and not ledger.try_finalize(now=later)
    finally:
        if w is not None:
            w.stop()
        srv.stop()
