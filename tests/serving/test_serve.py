"""The HTTP service for real (a uvicorn process on loopback), and bulk tagging on the ner queue."""

from __future__ import annotations

import asyncio
import re
import sys
import time
from pathlib import Path

import httpx
import pytest

from common.ledger import RunLedger
from common.paths import LABELED_DIR
from common.services import ManagedProcess, free_port, wait_until
from common.store import ResultStore
from producer.produce import Producer
from training.baselines import build_gazetteer

# starts real servers, workers or trainers: `make test-fast` leaves these out
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gazetteer_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gz")
    build_gazetteer([str(LABELED_DIR / "benzinga_gold_train.jsonl")], str(out))
    return out


def start_service(model: Path, log: Path, extra=(), env: dict | None = None
                  ) -> tuple[ManagedProcess, str]:
    port = free_port()
    p = ManagedProcess("serve", [sys.executable, "-m", "tickertag", "serve", "--model", str(model),
                                 "--port", str(port), *extra], log, env)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: httpx.get(url + "/readyz", timeout=2).status_code == 200, 120, "serve", p)
    return p, url


@pytest.fixture(scope="module")
def service(gazetteer_dir, tmp_path_factory):
    p, url = start_service(gazetteer_dir, tmp_path_factory.mktemp("log") / "serve.log",
                           ["--max-wait-ms", "20"])
    yield url
    p.stop()


def test_tags_headlines_with_character_spans(service):
    texts = ["Mizuho Maintains Buy on Autodesk, Raises Price Target to $250", "Dow Falls 300 Points"]
    r = httpx.post(service + "/v1/ner", json={"texts": texts}, timeout=10)
    assert r.status_code == 200
    body = r.json()
    assert [[e["text"] for e in d] for d in body["entities"]] == [["Mizuho", "Autodesk"], []]
    for t, d in zip(texts, body["entities"], strict=True):
        for e in d:
            assert t[e["start"]:e["end"]] == e["text"] and e["label"] == "Company"
    assert httpx.get(service + "/healthz").json() == {"status": "ok"}
    assert "/v1/ner" in httpx.get(service + "/openapi.json").json()["paths"]


def _batches(metrics_text: str) -> tuple[float, float]:
    count = float(re.search(r"^tickertag_ner_batch_size_count (\S+)", metrics_text, re.M)[1])
    total = float(re.search(r"^tickertag_ner_batch_size_sum (\S+)", metrics_text, re.M)[1])
    return count, total


def test_concurrent_requests_are_micro_batched(service):
    before = _batches(httpx.get(service + "/metrics").text)

    async def burst():
        async with httpx.AsyncClient(timeout=30) as c:
            rs = await asyncio.gather(*[c.post(service + "/v1/ner", json={
                "texts": [f"Autodesk Beats Estimates {i}"]}) for i in range(40)])
        return rs

    rs = asyncio.run(burst())
    assert all(r.status_code == 200 for r in rs)
    assert all(r.json()["entities"][0][0]["text"] == "Autodesk" for r in rs)
    after = _batches(httpx.get(service + "/metrics").text)
    calls, texts = after[0] - before[0], after[1] - before[1]
    assert texts == 40 and calls < 40  # several requests shared a model call


@pytest.mark.parametrize(("payload", "status", "needle"), [
    ({"texts": []}, 422, "at least 1"),
    ({"texts": ["x"] * 10_000}, 422, "at most 256"),
    ({"texts": ["y" * 5000]}, 422, "longer than"),
    ({"texts": "Apple"}, 422, "list"),
    ({"texts": [1, 2]}, 422, "string"),
    ({"texts": ["z" * 1_100_000]}, 413, "bytes"),
])
def test_bad_requests_get_clear_errors_and_service_keeps_serving(service, payload, status, needle):
    r = httpx.post(service + "/v1/ner", json=payload, timeout=30)
    assert r.status_code == status and needle in r.text
    ok = httpx.post(service + "/v1/ner", json={"texts": ["Autodesk Rises"]}, timeout=10)
    assert ok.status_code == 200


def test_serves_a_trained_gliner(tmp_path):
    from training.config import TrainConfig
    from training.runner import run_training

    run_training(TrainConfig(max_train=16, max_valid=4, epochs=1, output=str(tmp_path / "g")))
    p, url = start_service(tmp_path / "g", tmp_path / "serve.log")
    try:
        t = "UBS Maintains Neutral on Agilent Technologies"
        r = httpx.post(url + "/v1/ner", json={"texts": [t], "threshold": 0.05}, timeout=30)
        assert r.status_code == 200 and r.json()["model"] == "gliner"
        for e in r.json()["entities"][0]:
            assert t[e["start"]:e["end"]] == e["text"]
    finally:
        p.stop()


def test_bulk_tagging_on_the_ner_queue(gazetteer_dir, make_settings, workers, celery_app):
    from test_pipeline import accounted, wait_done

    from common.task_names import NER_TASK

    s = make_settings(batch_size=4)
    workers(s, queue="ner", concurrency=1)
    rows = [{"title": f"Mizuho Maintains Buy on Autodesk {i}"} for i in range(10)]
    rep = Producer(celery_app, s, task=NER_TASK,
                   task_kwargs={"model_dir": str(gazetteer_dir)}).run(rows, "bulk")
    assert rep.enqueued == 10 and rep.batches == 3
    ledger = RunLedger.from_url(s.redis_dsn(), s.run_id)
    st = wait_done(ledger, 120)
    store = ResultStore(s.results_dir, s.run_id)
    res = list(store.iter_results())
    accounted(store, ledger, {r["id"] for r in res})
    assert st["headlines_done"] == 10 and all(
        [e["text"] for e in r["entities"]] == ["Mizuho", "Autodesk"] for r in res)
    # priced by the host that did the work (the compact model's), not the LLM endpoint
    from common.summary import run_price_per_hour, run_summary

    assert ledger.task() == NER_TASK
    price = run_price_per_hour(ledger, s)
    assert price == s.ner_price_per_hour != s.endpoint_price_per_hour
    assert run_summary(ledger, price)["price_per_hour"] == price


def test_docker_compose_serving_services_run_real_cli_commands():
    """The compose file's ner-api / ner-worker / train-worker commands are commands and options
    the CLI really has (a renamed option would otherwise only fail in a deployment)."""
    import typer.main
    import yaml

    from tickertag.cli import _register_all, app

    if not app.registered_commands:
        _register_all()
    group = typer.main.get_command(app)
    compose = yaml.safe_load((Path(__file__).resolve().parents[2] / "docker-compose.yml")
                             .read_text())["services"]
    for name, queue in (("ner-api", None), ("ner-worker", "ner"), ("train-worker", "train")):
        argv = compose[name]["command"]
        cmd = group.commands[argv[0]]
        opts = {o for p in cmd.params for o in p.opts}
        assert {a for a in argv[1:] if a.startswith("--")} <= opts, (name, argv)
        if queue:
            assert argv[:2] == ["worker", queue]
    api = compose["ner-api"]
    assert api["command"][api["command"].index("--host") + 1] == "0.0.0.0"
    assert all(str(p).startswith("127.0.0.1:") for p in api["ports"])  # loopback on the host
    assert "/readyz" in " ".join(api["healthcheck"]["test"])
    train = compose["train-worker"]["command"]
    assert train[train.index("--concurrency") + 1] == "1"  # one job at a time per worker


@pytest.mark.parametrize(("texts", "status"), [
    (["Autodesk Rises"] * 256, 200), (["Autodesk Rises"] * 257, 422),
    (["A" * 2000], 200), (["A" * 2001], 422),
])
def test_limits_hold_exactly_at_their_boundaries(service, texts, status):
    r = httpx.post(service + "/v1/ner", json={"texts": texts}, timeout=30)
    assert r.status_code == status, r.text[:200]


def test_a_chunked_body_over_the_limit_is_refused_while_it_streams(service):
    sent = []

    def body():
        chunk = b'{"texts": ["' + b"x" * 65_536
        for _ in range(32):  # 2 MB, no Content-Length: chunked transfer encoding
            sent.append(len(chunk))
            yield chunk

    r = httpx.post(service + "/v1/ner", content=body(), timeout=30,
                   headers={"content-type": "application/json"})
    assert r.status_code == 413 and "bytes" in r.text
    ok = httpx.post(service + "/v1/ner", json={"texts": ["Autodesk Rises"]}, timeout=10)
    assert ok.status_code == 200


def test_a_full_queue_answers_503_and_a_failing_text_fails_only_its_request():
    """Faults a real model cannot be told to produce: a slow model and one that raises on one
    text. The real MicroBatcher runs them."""
    import time as _time

    from workers.ner.service import MicroBatcher, QueueFull

    class Slow:
        def predict(self, texts, threshold=None):
            if any("POISON" in t for t in texts):
                raise ValueError("model failed on this text")
            _time.sleep(0.2)
            return [[] for _ in texts]

    async def main():
        b = MicroBatcher(Slow(), max_batch=64, max_queued=4)
        b.start()
        first = asyncio.ensure_future(b.submit(["a"], None))
        await asyncio.sleep(0.05)  # the model is busy with "a"
        waiting = [asyncio.ensure_future(b.submit([t], None)) for t in ("b", "POISON", "c")]
        await asyncio.sleep(0)
        with pytest.raises(QueueFull):
            await b.submit(["d", "e"], None)  # 4 queued + 2 > 4
        res = await asyncio.gather(first, *waiting, return_exceptions=True)
        await b.stop()
        return res

    res = asyncio.run(main())
    assert res[0] == [[]] and res[1] == [[]] and res[3] == [[]]  # batched with the poison
    assert isinstance(res[2], ValueError)


def test_api_docs_load_their_assets_from_the_service_not_a_cdn(service):
    """/docs and /redoc were blank offline: their scripts came from a CDN."""
    for page in ("/docs", "/redoc"):
        html = httpx.get(service + page, timeout=10).text
        srcs = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', html)
        assert srcs, html[:300]
        for src in srcs:
            assert src.startswith("/"), f"{page} loads {src} from elsewhere"
            r = httpx.get(service + src, timeout=10)
            assert r.status_code == 200 and len(r.content) > 10_000, src


def _metrics(url: str) -> tuple[dict[str, float], float]:
    """``/v1/ner`` answers counted by status, and the latency histogram's count."""
    text = httpx.get(url + "/metrics", timeout=10).text
    by_status = {m[0]: float(m[1]) for m in
                 re.findall(r'tickertag_ner_requests_total\{status="(\d+)"\} ([0-9.e+]+)', text)}
    count = re.search(r"tickertag_ner_request_seconds_count ([0-9.e+]+)", text)
    assert count, "no latency histogram"
    return by_status, float(count[1])


def test_metrics_count_each_answer_by_status_and_time_it(service):
    before, _ = _metrics(service)
    assert httpx.post(service + "/v1/ner", json={"texts": ["Autodesk Rises"]}).status_code == 200
    assert httpx.post(service + "/v1/ner", json={"texts": []}).status_code == 422
    assert httpx.post(service + "/v1/ner", json={"texts": ["z" * 1_100_000]},
                      timeout=30).status_code == 413
    assert httpx.get(service + "/healthz").status_code == 200  # not a /v1/ner request
    after, timed = _metrics(service)
    grew = {s: after.get(s, 0) - before.get(s, 0) for s in after}
    assert {s: n for s, n in grew.items() if n} == {"200": 1, "422": 1, "413": 1}
    assert timed == sum(after.values())


def test_two_workers_share_the_port_and_metrics_count_every_request(gazetteer_dir, tmp_path):
    """``--workers 2``: two processes answer on one port, and ``/metrics``, whichever of them
    answers the scrape, counts the requests of both (a stale value file of an earlier run in
    the metrics directory is removed at start, as Prometheus' multiprocess mode requires)."""
    metrics_dir = tmp_path / "prom"
    metrics_dir.mkdir()
    (metrics_dir / "counter_99999.db").write_bytes(b"left by an earlier run")
    p, url = start_service(gazetteer_dir, tmp_path / "serve.log", ["--workers", "2"],
                           {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)})
    try:
        pids: set[int] = set()
        deadline = time.monotonic() + 60
        while len(pids) < 2 and time.monotonic() < deadline:
            r = httpx.get(url + "/readyz", timeout=5)  # a new connection each time
            if r.status_code == 200:
                pids.add(r.json()["pid"])
        assert len(pids) == 2, f"one process answered: {pids}"
        assert p.pid not in pids  # the parent only supervises
        for i in range(30):
            r = httpx.post(url + "/v1/ner", json={"texts": [f"Autodesk Rises {i}"]}, timeout=10)
            assert r.status_code == 200
        for _ in range(6):  # several scrapes: they land on either process
            by_status, timed = _metrics(url)
            assert by_status == {"200": 30.0} and timed == 30
    finally:
        p.stop()
