"""The provider Batch API mode, against the local batch server (``common.batch_server``) over
the replay endpoint, with real Redis, the result store and Celery workers: the batch server
speaks the provider's protocol (files, batches, states, partial failures, expiry); a run in
batch mode ends with every headline a result; a batch that expires part done sends the rest
online or to dead letters, counted; a worker killed while polling resumes the same remote
batch (the server sees one create)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest
from test_pipeline import accounted, wait_done

from cascade.replay import RECORDING, Recording
from common.batch_server import CHAT_ENDPOINT, start_batch_server
from common.ledger import RunLedger
from common.services import free_port
from common.store import ResultStore
from producer.produce import Producer
from workers.annotate.batch import run_batch
from workers.annotate.batch_api import remote_batches, save_remote
from workers.annotate.prompt import build_messages

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def recording() -> Recording:
    return Recording.load(RECORDING)


@pytest.fixture(scope="module")
def batch_servers(tmp_path_factory):
    """Start batch servers on demand (one per set of knobs), stop them all at the end."""
    started: dict[tuple, tuple[str, object]] = {}
    logs = tmp_path_factory.mktemp("batch-logs")

    def get(upstream: str, **options) -> str:
        key = (upstream, *sorted(options.items()))
        if key not in started:
            port = free_port()
            started[key] = (f"http://127.0.0.1:{port}",
                            start_batch_server(upstream, port, logs, **options))
        return started[key][0]

    yield get
    for _, proc in started.values():
        proc.stop()


def stats(url: str) -> dict:
    return httpx.get(f"{url}/stats").json()


def batch_settings(make_settings, url: str, **over):
    s = make_settings(llm_base_url=url, llm_mode="batch", batch_poll_s=0.2, **over)
    # a model name of this test's own: answers cached by another test are not this test's
    return s.model_copy(update={"llm_model": f"replay-{s.run_id}"})


def recorded_rows(recording: Recording, n: int, skip: int = 0) -> list[dict]:
    return list(recording.rows.values())[skip:skip + n]


def line(cid: str, text: str) -> dict:
    return {"custom_id": cid, "method": "POST", "url": CHAT_ENDPOINT,
            "body": {"model": "replay", "messages": build_messages(text)}}


def upload(url: str, lines: list[dict]) -> str:
    body = "".join(json.dumps(x) + "\n" for x in lines).encode()
    r = httpx.post(f"{url}/v1/files", data={"purpose": "batch"},
                   files={"file": ("in.jsonl", body, "application/jsonl")})
    r.raise_for_status()
    return r.json()["id"]


def until_ended(url: str, bid: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        b = httpx.get(f"{url}/v1/batches/{bid}").json()
        if b["status"] in ("completed", "expired", "failed", "cancelled"):
            return b
        time.sleep(0.1)
    raise AssertionError(f"batch {bid} did not end in {timeout}s")


def jsonl(url: str, file_id: str) -> list[dict]:
    return [json.loads(x) for x in httpx.get(f"{url}/v1/files/{file_id}/content").text.splitlines()]


def test_the_batch_server_speaks_the_providers_protocol(replay, batch_servers, recording):
    url = batch_servers(replay)
    rows = recorded_rows(recording, 2)
    fid = upload(url, [line("a", rows[0]["text"]), line("b", rows[1]["text"]),
                       line("c", "Nobody Recorded An Answer For This Headline")])
    created = httpx.post(f"{url}/v1/batches", json={
        "input_file_id": fid, "endpoint": CHAT_ENDPOINT, "completion_window": "24h",
        "metadata": {"k": "v"}}).json()
    assert created["status"] in ("validating", "in_progress")
    done = until_ended(url, created["id"])
    assert done["status"] == "completed" and done["request_counts"] == {
        "total": 3, "completed": 2, "failed": 1}
    out = {x["custom_id"]: x for x in jsonl(url, done["output_file_id"])}
    assert set(out) == {"a", "b"}
    answer = json.loads(out["a"]["response"]["body"]["choices"][0]["message"]["content"])
    assert answer == recording.answer(rows[0]["text"])
    [err] = jsonl(url, done["error_file_id"])  # the upstream's 404: a partial failure
    assert err["custom_id"] == "c" and err["response"]["status_code"] == 404
    listed = httpx.get(f"{url}/v1/batches").json()["data"]
    assert listed[0]["id"] == created["id"] and listed[0]["metadata"] == {"k": "v"}
    # an input file that does not validate fails the batch as a whole; nothing runs
    bad = upload(url, [line("x", rows[0]["text"]), line("x", rows[1]["text"]),
                       {**line("y", rows[0]["text"]), "url": "/v1/embeddings"}])
    before = stats(url)["upstream_requests"]
    failed = until_ended(url, httpx.post(f"{url}/v1/batches", json={
        "input_file_id": bad, "endpoint": CHAT_ENDPOINT}).json()["id"])
    assert failed["status"] == "failed" and failed["output_file_id"] is None
    assert [e["line"] for e in failed["errors"]["data"]] == [2, 3]
    assert stats(url)["upstream_requests"] == before
    assert httpx.post(f"{url}/v1/batches", json={"input_file_id": fid,
                                                "endpoint": "/v1/embeddings"}).status_code == 400
    assert httpx.post(f"{url}/v1/batches", json={"input_file_id": "file_nope",
                                                "endpoint": CHAT_ENDPOINT}).status_code == 404


def test_a_batch_expires_part_done_with_the_rest_in_its_error_file(replay, batch_servers,
                                                                  recording):
    url = batch_servers(replay, window_s=5, stall_after=2)
    rows = recorded_rows(recording, 5)
    fid = upload(url, [line(str(i), r["text"]) for i, r in enumerate(rows)])
    b = until_ended(url, httpx.post(f"{url}/v1/batches", json={
        "input_file_id": fid, "endpoint": CHAT_ENDPOINT}).json()["id"])
    assert b["status"] == "expired" and b["request_counts"]["completed"] == 2
    assert len(jsonl(url, b["output_file_id"])) == 2
    errs = jsonl(url, b["error_file_id"])
    assert len(errs) == 3 and {e["error"]["code"] for e in errs} == {"batch_expired"}


def test_a_run_in_batch_mode_ends_with_every_headline_a_result(
        replay, batch_servers, recording, make_settings, workers, celery_app):
    url = batch_servers(replay)
    s = batch_settings(make_settings, url, batch_size=10)
    rows = recorded_rows(recording, 20, skip=10)
    before = stats(url)
    w = workers(s, concurrency=2)
    # the workers run online by default; the run's producer sets the mode (`--batch-api`)
    rep = Producer(celery_app, s).run([{"title": r["text"]} for r in rows], "batch")
    assert rep.enqueued == 20 and rep.batches == 2
    ledger = RunLedger.from_url(s.redis_dsn(), s.run_id)
    st = wait_done(ledger, 120, [w])
    store = ResultStore(s.results_dir, s.run_id)
    results = {r["id"]: r for r in store.iter_results()}
    accounted(store, ledger, set(results))
    assert len(results) == 20 and st["headlines_dead"] == 0
    for r in results.values():
        rec = recording.row(r["text"])
        assert r["valid"] and [(e["start"], e["end"]) for e in r["entities"]] == [
            (e["start"], e["end"]) for e in rec["entities"]], r
    assert st["batch_requests"] == st["batch_answered"] == 20 and st.get("batch_missing", 0) == 0
    assert st["batch_prompt_tokens"] == st["prompt_tokens"] > 0
    after = stats(url)
    assert after["batches_created"] - before.get("batches_created", 0) == 2
    assert after.get("chat_proxied", 0) == before.get("chat_proxied", 0)  # nothing online
    meta = ledger.meta()
    remote = remote_batches(meta)
    assert meta["llm_mode"] == "batch" and len(remote) == 2
    assert {r["status"] for r in remote.values()} == {"completed"}
    assert all(r["batch"].startswith("batch_") and r["answered"] == 10 for r in remote.values())
    # status shows the mode, the remote batches, and the batch price
    p = subprocess.run([sys.executable, "-m", "tickertag", "status", "--run", s.run_id,
                        "--json"], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "TICKERTAG_REDIS_URL": s.redis_dsn()})
    assert p.returncode == 0, p.stderr
    mode = json.loads(p.stdout)["llm_mode"]
    assert mode["mode"] == "batch" and mode["states"] == {"completed": 2}
    assert set(mode["remote_batches"]) == set(remote)
    full = (st["prompt_tokens"] * s.price_input_per_mtok
            + st["completion_tokens"] * s.price_output_per_mtok) / 1e6
    assert mode["spent_usd"] == pytest.approx(full * s.batch_discount, rel=1e-3)
    # and as tables in an 80-column terminal, every remote batch id whole
    p = subprocess.run([sys.executable, "-m", "tickertag", "status", "--run", s.run_id],
                       capture_output=True, text=True, timeout=60,
                       env={**os.environ, "TICKERTAG_REDIS_URL": s.redis_dsn(), "COLUMNS": "80"})
    assert p.returncode == 0, p.stderr
    assert "LLM mode: batch" in p.stdout
    assert all(r["batch"] in p.stdout for r in remote.values()), p.stdout


@pytest.mark.parametrize("fallback", ["online", "dead"])
def test_a_batch_that_expires_half_done_sends_the_rest_online_or_to_dead_letters(
        fallback, replay, batch_servers, recording, make_settings):
    url = batch_servers(replay, window_s=5, stall_after=4)
    s = batch_settings(make_settings, url, batch_fallback=fallback)
    rows = recorded_rows(recording, 8, skip=40)
    heads = [{"id": f"h{i}", "text": r["text"]} for i, r in enumerate(rows)]
    before = stats(url)
    out = run_batch(s.run_id, "b1", heads, s)
    ledger = RunLedger.from_url(s.redis_dsn(), s.run_id)
    st = ledger.stats()
    store = ResultStore(s.results_dir, s.run_id)
    results = [r["id"] for r in store.iter_results()]
    dead = [h["id"] for d in store.iter_dead() for h in d["headlines"]]
    assert sorted(results + dead) == sorted(h["id"] for h in heads)  # none dropped
    assert st["batch_requests"] == 8 and st["batch_answered"] == 4 and st["batch_missing"] == 4
    [remote] = remote_batches(ledger.meta()).values()
    assert remote["status"] == "expired" and remote["answered"] == 4
    online = stats(url).get("chat_proxied", 0) - before.get("chat_proxied", 0)
    if fallback == "online":
        assert len(results) == 8 and not dead and st["batch_online"] == 4 and online == 4
        assert st["headlines_done"] == 8 and out["headlines_done"] == 8
    else:
        assert len(results) == 4 and len(dead) == 4 and online == 0
        assert st["headlines_dead"] == 4 and st.get("batch_online", 0) == 0
        [letter] = store.iter_dead()
        assert letter["error_type"] == "batch" and "batch_expired" in letter["error"]


def test_a_worker_killed_while_polling_resumes_the_same_remote_batch(
        fake_llm, batch_servers, make_settings, workers, celery_app):
    # one request at a time upstream, 0.4 s each: the batch of 8 runs ~3 s, long enough to
    # kill the worker while it polls
    url = batch_servers(fake_llm.url, concurrency=1)
    s = batch_settings(make_settings, url, batch_size=8, visibility_timeout_s=5,
                       batch_lease_s=3, request_timeout_s=5)
    titles = [f"Globex Resumes Polling In Quarter {i}" for i in range(8)]
    before = stats(url)
    fake_llm.latency = 0.4
    try:
        w = workers(s, concurrency=1)
        Producer(celery_app, s).run([{"title": t} for t in titles], "resume")
        ledger = RunLedger.from_url(s.redis_dsn(), s.run_id)
        deadline = time.monotonic() + 60
        while True:  # the worker noted its remote batch and is polling it
            remote = remote_batches(ledger.meta())
            if remote and next(iter(remote.values())).get("batch"):
                break
            assert time.monotonic() < deadline and w.alive(), w.tail()
            time.sleep(0.05)
        [(bid, first)] = remote.items()
        w.kill()
        assert ledger.stats()["batches_finished"] == 0
        w2 = workers(s, concurrency=1)
        st = wait_done(ledger, 120, [w2])
    finally:
        fake_llm.latency = 0.0
    after = stats(url)
    assert after["batches_created"] - before.get("batches_created", 0) == 1  # never again
    assert after["files_uploaded"] - before.get("files_uploaded", 0) == 1
    final = remote_batches(ledger.meta())[bid]
    assert final["batch"] == first["batch"] and final["resumed"] >= 1
    assert final["status"] == "completed"
    store = ResultStore(s.results_dir, s.run_id)
    ids = {r["id"] for r in store.iter_results()}
    assert len(ids) == 8 and st["batch_answered"] == 8 and st["batches_finished"] == 1
    accounted(store, ledger, ids)


def test_a_copy_killed_between_create_and_noting_the_id_finds_its_batch_again(
        replay, batch_servers, recording, make_settings):
    """The ledger holds the uploaded file but no batch id (the copy died right after
    ``/v1/batches`` answered): the next copy finds the batch by its metadata, creates none."""
    url = batch_servers(replay)
    s = batch_settings(make_settings, url)
    rows = recorded_rows(recording, 3, skip=60)
    heads = [{"id": f"k{i}", "text": r["text"]} for i, r in enumerate(rows)]
    fid = upload(url, [line(h["id"], h["text"]) for h in heads])
    created = httpx.post(f"{url}/v1/batches", json={
        "input_file_id": fid, "endpoint": CHAT_ENDPOINT,
        "metadata": {"tickertag_run": s.run_id, "tickertag_batch": "b1"}}).json()
    ledger = RunLedger.from_url(s.redis_dsn(), s.run_id)
    save_remote(ledger, "b1", {"file": fid, "requests": 3, "status": "uploaded"})
    before = stats(url)
    out = run_batch(s.run_id, "b1", heads, s)
    after = stats(url)
    assert after["batches_created"] == before["batches_created"]  # none created
    assert after["files_uploaded"] == before["files_uploaded"]
    assert out["headlines_done"] == 3 and out["batch_answered"] == 3
    assert remote_batches(ledger.meta())["b1"]["batch"] == created["id"]
