"""The pipeline under load and faults (a CI-sized soak), bad input the other tests do
not cover, regressions for the bugs the soak found, and the remaining security checks."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml
from test_pipeline import accounted, wait_done
from worker_env import settings_env

from common.ledger import RunLedger
from common.services import free_port, start_flower, start_worker, wait_until
from common.settings import Settings
from common.store import ResultStore, batch_id
from producer.produce import Producer
from producer.sources import MissingColumn, iter_source

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.soak import SoakConfig, run_soak  # noqa: E402

# starts real servers, workers or trainers: `make test-fast` leaves these out
pytestmark = pytest.mark.slow

CANARY = "hf_CANARY_fl0wer_must_not_show_5c1d"


# -- the soak, CI-sized ------------------------------------------------------------------------
def test_quick_soak_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    """3,000 headlines through producer subprocess -> own AOF Redis -> 2 workers -> store, with
    worker / Redis / producer SIGKILLs, error and slow bursts, then a requeue round trip."""
    res = run_soak(SoakConfig.quick(work_dir=tmp_path, keep=True))
    detail = json.dumps({k: v for k, v in res.__dict__.items() if k != "worker_rss"}, default=str)
    assert res.lost == 0, detail
    assert res.duplicates == 0 and res.unique_result_keys == res.headlines, detail
    assert res.results == res.headlines == 3000, detail
    assert res.ledger_invariant, detail
    # every scheduled fault was injected, while the run was going on
    assert res.faults.get("kill_worker") == 3 and res.faults.get("kill_redis") == 2, detail
    assert res.faults.get("kill_producer") == 1 and res.faults.get("error_burst") == 2, detail
    assert not any("finished before" in n for n in res.notes), detail
    # Not asserted: a worker may exit on its own when Redis is SIGKILLed under it (celery 5.7's
    # consumer can crash on reconnect with "'NoneType' object has no attribute 'hostname'");
    # deployments restart workers (docker-compose: restart: unless-stopped) and, as asserted
    # above, no headline is lost or duplicated either way. Such exits are reported here:
    print("unplanned worker exits:", [n for n in res.notes if "died unplanned" in n])
    # Not asserted either: kombu loses a message popped by a worker killed before it reached
    # ``unacked`` (a race); the workers' lost-batch sweep sends such a batch again. Reported:
    print("batches the broker lost, sent again:", res.ledger.get("resent_lost"))
    # the dead-letter round trip: some headlines died during the faults ("#500x3" markers fail
    # every first-pass attempt), all came back through `tickertag requeue`
    assert res.dead_before_requeue > 0, detail
    assert res.requeued == res.dead_before_requeue and res.dead_after_requeue == 0, detail
    assert {"429", "500", "timeout", "badjson", "schema"} <= set(res.endpoint_faults), detail


# -- bad input ---------------------------------------------------------------------------------
def _write_rows(path: Path, header: list[str] | None, rows: list[list[str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        if header:
            w.writerow(header)
        w.writerows(rows)


def test_malformed_csv_rows_are_counted_errors_and_the_run_goes_on(
        fake_llm, make_settings, workers, celery_app, tmp_path: Path) -> None:
    src = tmp_path / "bad.csv"
    _write_rows(src, ["date", "title", "stock_symbol"], [
        ["2020-01-01", "Apple Beats Estimates", "AAPL"],
        ["2020-01-03", "   \t  ", "X"],  # whitespace only
        ["2020-01-03", "\x01\x02\x1f", "X"],  # control characters only
        ["2020-01-04", "Nvidia\x07 Rallies\x00 After\nEarnings", "NVDA"],  # cleaned, kept
        ["2020-01-05", "Acme " * 200_000, "ACME"],  # a 1 MB title
        ["2020-01-05", "Apple  Beats   Estimates", "AAPL"],  # same id as row 1 once normalised
        ["", "", ""],
        ["2020-01-06", "Alcoa Rallies", "AA"],
    ])
    with open(src, "a", encoding="utf-8", newline="") as f:
        f.write("2020-01-02,Tesla, Inc. Recalls Cars,TSLA\n")  # unquoted comma: 4 fields
        f.write("2020-01-02,Short Row Only\n")  # 2 fields
        f.write("\n")  # a blank line is not a record
        f.write("2020-01-07,Boeing Wins Order,BA\n")  # the run goes on after the bad rows
    no_title = tmp_path / "no_title.csv"
    _write_rows(no_title, ["date", "headline_text"], [["2020-01-01", "Apple"]])
    title_only = tmp_path / "title_only.csv"
    _write_rows(title_only, ["title"], [["Cisco Falls"]])

    s = make_settings(llm_base_url=fake_llm.url)
    w = workers(s)
    rep = Producer(celery_app, s).run(iter_source(str(src)), "bad.csv")
    assert (rep.rows, rep.rejected, rep.duplicates, rep.enqueued) == (11, 6, 1, 4), rep
    with pytest.raises(MissingColumn, match="no title column: found `date`, `headline_text`"):
        iter_source(str(no_title))  # a header without the column: refused before any row
    rep3 = Producer(celery_app, s).run(iter_source(str(title_only)), "title_only.csv")
    assert (rep3.rows, rep3.rejected, rep3.enqueued) == (1, 0, 1)

    ledger = RunLedger.from_url(s.redis_dsn(), s.run_id)
    wait_done(ledger, 60, [w])
    store = ResultStore(s.results_dir, s.run_id)
    res = {r["text"]: r for r in store.iter_results()}
    assert set(res) == {"Apple Beats Estimates", "Nvidia Rallies After Earnings", "Alcoa Rallies",
                        "Boeing Wins Order", "Cisco Falls"}
    assert res["Cisco Falls"]["date"] is None and res["Cisco Falls"]["stock_symbol"] is None
    accounted(store, ledger, set(r["id"] for r in res.values()))
    rejected = [json.loads(x) for x in (Path(store.url) / "rejected.jsonl").read_text().splitlines()]
    by_field: dict[str, list[dict[str, Any]]] = {}
    for r in rejected:
        by_field.setdefault(r["field"], []).append(r)
    assert sorted(r["error"] for r in by_field["row"]) == [
        "line 11: 4 fields, header has 3", "line 12: 2 fields, header has 3"]  # physical lines
    assert any("Tesla, Inc. Recalls Cars" in r["row"]["raw"] for r in by_field["row"])
    assert len(by_field["title"]) == 4  # whitespace, control chars, 1 MB, empty
    assert any("longer than" in r["error"] for r in by_field["title"])
    assert all(len(v or "") <= 500 for r in rejected for v in r["row"].values())
    assert ledger.stats()["rejected"] == 6


# -- regressions for bugs the soak found -------------------------------------------------------
def test_outcome_written_but_not_recorded_then_redelivered_is_one_result(
        fake_llm, make_settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Redis dropped between writing a batch's dead letter and recording it; the redelivered
    batch succeeds. Before, the stale dead letter stayed: the headline was both a result and a
    dead letter, and `requeue` would have annotated it a second time. Now an outcome is staged
    until the ledger records it, so the unrecorded dead letter is never visible, and the
    recorded outcome drops it."""
    from workers.annotate.batch import run_batch

    s = make_settings(llm_base_url=fake_llm.url, max_retries=1)
    items = [{"id": f"id-{s.run_id}", "text": f"Oracle Up #500x2 {s.run_id}", "date": None,
              "stock_symbol": None}]
    bid = batch_id(h["id"] for h in items)
    ledger = RunLedger.from_url(s.redis_dsn(), s.run_id)
    ledger.batch_enqueued(1)
    real = RunLedger.finish_batch

    def broken(self: RunLedger, *a: Any, **k: Any) -> bool:
        raise redis.ConnectionError("Connection closed by server.")

    monkeypatch.setattr(RunLedger, "finish_batch", broken)
    with pytest.raises(redis.ConnectionError):
        run_batch(s.run_id, bid, items, s)  # both attempts 500: dead letter written, not recorded
    store = ResultStore(s.results_dir, s.run_id)
    staged = lambda: [p for p in (Path(store.url) / "dead").iterdir() if ".staged-" in p.name]  # noqa: E731
    assert not list(store.iter_dead()) and len(staged()) == 1  # written, not visible
    monkeypatch.setattr(RunLedger, "finish_batch", real)
    run_batch(s.run_id, bid, items, s)  # redelivery: the 3rd call succeeds
    assert not list(store.iter_dead()) and staged() == []
    accounted(store, ledger, {items[0]["id"]})


def test_producer_waits_out_a_redis_outage_under_backpressure(make_settings) -> None:
    """The producer spends a long run waiting for room; a Redis restart must not kill it."""
    p = Producer(None, make_settings(max_batches_in_flight=2))  # type: ignore[arg-type]
    answers: list[Any] = [redis.ConnectionError("refused"), redis.ConnectionError("refused"), 5, 1]

    class Flaky:
        def producer_alive(self, producer_id: str) -> None:
            pass

        def in_flight(self) -> int:
            a = answers.pop(0)
            if isinstance(a, Exception):
                raise a
            return a

    p.ledger = Flaky()  # type: ignore[assignment]
    p._wait_for_room()
    assert answers == []
    answers[:] = [redis.ConnectionError("refused")] * 3
    with pytest.raises(redis.ConnectionError):
        p._wait_for_room(outage_s=0.1)


# -- security ----------------------------------------------------------------------------------
_PROBE = """
import json
from common.celery_app import app
from common.ledger import RunLedger
from common.settings import get_settings
import redis.asyncio as aioredis
s = get_settings()
conn = app.connection_for_write()
backend = app.backend
print(json.dumps({
    "dsn": s.redis_dsn(), "broker": app.conf.broker_url, "transport": conn.transport_cls,
    "broker_cert_reqs": int(conn.ssl["ssl_cert_reqs"]) if isinstance(conn.ssl, dict) else None,
    "backend_conn": backend.connparams["connection_class"].__name__,
    "backend_cert_reqs": int(backend.connparams.get("ssl_cert_reqs", -1)),
    "ledger_conn": RunLedger.from_url(s.redis_dsn(), "x").r.connection_pool.connection_class.__name__,
    "async_conn": aioredis.Redis.from_url(s.redis_dsn()).connection_pool.connection_class.__name__,
}))
"""


def _probe(url: str) -> dict[str, Any]:
    """The TLS view of every Redis client the pipeline builds from one URL (no server needed:
    all of them connect lazily)."""
    env = {**os.environ, "TICKERTAG_REDIS_URL": url}
    out = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_rediss_url_is_accepted_by_settings_celery_ledger_and_workers() -> None:
    url = "rediss://:pw@redis.example:6380/0?ssl_cert_reqs=required"
    assert Settings(redis_url=url).redis_dsn() == url
    got = _probe(url)
    assert got["dsn"] == got["broker"] == url and got["transport"] == "rediss"
    assert got["broker_cert_reqs"] == 2 and got["backend_cert_reqs"] == 2  # ssl.CERT_REQUIRED
    assert got["backend_conn"] == got["ledger_conn"] == got["async_conn"] == "SSLConnection"


def test_bare_rediss_url_verifies_certificates() -> None:
    got = _probe("rediss://:pw@redis.example:6380/0")
    assert got["broker_cert_reqs"] == 2 and got["backend_cert_reqs"] == 2
    assert got["backend_conn"] == got["ledger_conn"] == got["async_conn"] == "SSLConnection"
    # an explicit choice is kept as written
    assert _probe("rediss://:pw@redis.example:6380/0?ssl_cert_reqs=none")["broker_cert_reqs"] == 0


def test_flower_requires_basic_auth_in_docker_compose() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    flower = compose["services"]["flower"]
    argv = flower["entrypoint"]
    auth = [a for a in argv if a.startswith("--basic-auth=")]
    assert len(auth) == 1 and auth[0] == ("--basic-auth=${FLOWER_USER:-admin}:"
                                          "${FLOWER_PASSWORD:?set FLOWER_PASSWORD in .env}")
    # no password has a default: compose refuses to start until .env sets them
    text = (ROOT / "docker-compose.yml").read_text()
    assert "change-me" not in text and "${REDIS_PASSWORD:?" in text
    ignored = (ROOT / ".gitignore").read_text().split()
    assert ".env" in ignored and "tickertag.toml" in ignored
    assert "FLOWER_UNAUTHENTICATED_API" not in json.dumps(compose)
    assert all(str(p).startswith("127.0.0.1:") for p in flower.get("ports", []))  # loopback only


def test_hf_token_absent_from_flower_task_views(fake_llm, make_settings, celery_app,
                                                tmp_path: Path) -> None:
    s = make_settings(llm_base_url=fake_llm.url)
    port = free_port()
    flower = start_flower(port, tmp_path / "logs", env={"FLOWER_UNAUTHENTICATED_API": "true"})
    w = start_worker("annotate", tmp_path / "logs", env={**settings_env(s), "HF_TOKEN": CANARY})
    api = f"http://127.0.0.1:{port}/api"
    try:
        wait_until(lambda: "ready." in w.tail(4000), 90, "worker", w)
        titles = [f"Hooli Beats Estimates {i} {s.run_id}" for i in range(3)]
        Producer(celery_app, s).run([{"title": t} for t in titles], "x")
        wait_done(RunLedger.from_url(s.redis_dsn(), s.run_id), 60, [w])

        def our_tasks() -> dict[str, Any]:
            tasks = httpx.get(f"{api}/tasks", timeout=10).json()
            return {k: v for k, v in tasks.items()
                    if s.run_id in str(v.get("args")) and v.get("state") == "SUCCESS"}

        wait_until(lambda: len(our_tasks()) == 1, 30, "flower to see the task", flower)
        (tid,) = our_tasks()
        views = [httpx.get(f"{api}/tasks", timeout=10).text,
                 httpx.get(f"{api}/task/info/{tid}", timeout=10).text,
                 httpx.get(f"{api}/workers", params={"refresh": "true"}, timeout=30).text]
        assert s.run_id in views[0] and s.run_id in views[1]  # the views do show the task
        for body in views:
            assert CANARY not in body
        time.sleep(0.5)
    finally:
        w.stop()
        flower.stop()
    assert CANARY not in flower.tail(10**6)
