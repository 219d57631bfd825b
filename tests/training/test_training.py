"""CI-sized real training runs on the packaged MiniLM encoder (offline), the predict/evaluate
CLIs, the baselines and the train queue's lock and progress."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import redis
from typer.testing import CliRunner

from common.paths import LABELED_DIR
from training.config import TrainConfig
from training.inference import load_tagger

# starts real servers, workers or trainers: `make test-fast` leaves these out
pytestmark = pytest.mark.slow

TEST = str(LABELED_DIR / "benzinga_gold_test.jsonl")
HEADLINE = "Mizuho Maintains Buy on Autodesk, Raises Price Target to $250"


def cli():
    from tickertag.cli import _register_all, app

    if not app.registered_commands:
        _register_all()
    return app


def assert_spans_slice(texts: list[str], out: list) -> None:
    assert len(out) == len(texts)
    for t, spans in zip(texts, out, strict=True):
        for s in spans:
            assert t[s.start:s.end] == s.text and s.label == "Company"
            assert s.score is None or 0 <= s.score <= 1  # spaCy's NER has no span scores
        assert [s.start for s in spans] == sorted(s.start for s in spans)


def _retuned(model_dir: Path, cfg: TrainConfig) -> tuple[float, float]:
    """(threshold, valid F1) tuned afresh on the saved model and the run's own valid rows."""
    from training.data import read_valid_rows, subset
    from training.selection import tune_threshold

    valid = subset(read_valid_rows(cfg.valid), cfg.max_valid, cfg.seed)
    return tune_threshold(load_tagger(model_dir).predict, valid)


@pytest.fixture(scope="module")
def gliner_dir(tmp_path_factory) -> Path:
    from training.runner import run_training

    out = tmp_path_factory.mktemp("gliner")
    cfg = TrainConfig(kind="gliner", max_train=40, max_valid=20, epochs=1, output=str(out),
                      hidden_size=128)  # a narrower span head than GLiNER's default 512
    m = run_training(cfg)
    assert m["kind"] == "gliner" and m["train_headlines"] == 40 and len(m["history"]) == 1
    assert json.loads((out / "gliner_config.json").read_text())["hidden_size"] == 128
    assert m["best_epoch"] == 1
    assert m == json.loads((out / "tickertag.json").read_text())
    # the tuned threshold and its valid F1 are what the saved model gives on the same valid
    # rows: recomputed from the directory, not read back from the trainer's memory
    assert (m["threshold"], m["valid_f1"]) == _retuned(out, cfg)
    assert not (out / "checkpoints").exists()  # a finished directory is just the model
    return out


def test_gliner_saves_reloads_offline_and_predicts(gliner_dir):
    from gliner import GLiNER

    model = GLiNER.from_pretrained(str(gliner_dir), local_files_only=True)
    ents = model.predict_entities(HEADLINE, ["company"], threshold=0.01)
    assert all(HEADLINE[e["start"]:e["end"]] == e["text"] for e in ents)
    tagger = load_tagger(gliner_dir)
    texts = [HEADLINE, "", "Dow Falls 300 Points"]
    out = tagger.predict(texts, threshold=0.05)
    assert out[1] == [] and tagger.predict([]) == []
    assert_spans_slice(texts, out)
    # the tuned threshold is the default and lower thresholds only add spans
    assert len(tagger.predict([HEADLINE])[0]) <= len(out[0])


def test_predict_and_evaluate_cli_round_trip(gliner_dir, tmp_path):
    rows = [json.loads(line) for line in open(TEST)][:15]
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps({"id": r["id"], "text": r["text"]}) + "\n" for r in rows))
    gold = tmp_path / "gold.jsonl"
    gold.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out.jsonl"
    r = CliRunner().invoke(cli(), ["predict", "--model", str(gliner_dir), "--input", str(inp),
                                   "--output", str(out), "--threshold", "0.05"])
    assert r.exit_code == 0, r.output
    pred = [json.loads(line) for line in out.read_text().splitlines()]
    assert [p["id"] for p in pred] == [x["id"] for x in rows]
    for p in pred:
        for e in p["entities"]:
            assert set(e) == {"start", "end", "label", "text", "score"}
            assert p["text"][e["start"]:e["end"]] == e["text"] and e["label"] == "Company"
    r = CliRunner().invoke(cli(), ["evaluate", "--gold", str(gold), "--pred", str(out), "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.output.strip().splitlines()[-1])
    from common.metrics import score
    from common.spans import Span

    def spans(row: dict) -> list[Span]:
        return [Span(**{k: e[k] for k in ("start", "end", "label", "text")})
                for e in row["entities"]]

    want = score([spans(x) for x in rows], [spans(x) for x in pred])
    assert (res["f1"], res["tp"], res["fp"], res["fn"]) == (want.f1, want.tp, want.fp, want.fn)
    assert res["n_docs"] == 15
    assert res["tp"] + res["fn"] == sum(len(x["entities"]) for x in rows)
    assert res["f1_ci95"][0] <= res["f1"] <= res["f1_ci95"][1]
    # a perfect prediction scores 1.0 through the same CLI; the table and errors print
    r = CliRunner().invoke(cli(), ["evaluate", "--gold", str(gold), "--pred", str(gold), "--json"])
    assert json.loads(r.output.strip().splitlines()[-1])["f1"] == 1.0
    r = CliRunner().invoke(cli(), ["evaluate", "--gold", str(gold), "--pred", str(out),
                                   "--errors", "3"])
    assert r.exit_code == 0 and "95%" in r.output


def test_onnx_export_matches_torch_and_serves_through_load_tagger(gliner_dir, tmp_path):
    from training.onnx_export import ExportCheckFailed, export_onnx

    check = tmp_path / "check.jsonl"
    check.write_text("".join(open(TEST).readlines()[:30]))
    # fp32 ONNX is the same function as the torch model: same spans, scores within rounding
    steps: list[tuple] = []
    m = export_onnx(gliner_dir, tmp_path / "fp32", quantize=False, check_file=str(check),
                    progress=lambda *a: steps.append(a))
    assert [s[0] for s in steps if s[1:] == (1, 1)] == ["export", "check torch", "check onnx"]
    assert m["kind"] == "gliner-onnx" and m["check"]["passed"] and m["check"]["headlines"] == 30
    texts = [json.loads(line)["text"] for line in check.read_text().splitlines()] + [""]
    torch_out = load_tagger(gliner_dir).predict(texts, threshold=0.05)
    onnx_out = load_tagger(tmp_path / "fp32").predict(texts, threshold=0.05)
    assert_spans_slice(texts, onnx_out)
    assert [[(s.start, s.end) for s in x] for x in onnx_out] == \
        [[(s.start, s.end) for s in x] for x in torch_out]
    for a, b in zip(onnx_out, torch_out, strict=True):
        assert all(abs(x.score - y.score) < 1e-3 for x, y in zip(a, b, strict=True))
    # int8 through the CLI: a smaller file, and an impossible bound is refused with exit 1
    out = tmp_path / "int8"
    r = CliRunner().invoke(cli(), ["export-onnx", "--model", str(gliner_dir), "--output", str(out),
                                   "--check", str(check), "--max-f1-drop", "1.0"])
    assert r.exit_code == 0, r.output
    assert (out / "model_int8.onnx").stat().st_size < (out / "model.onnx").stat().st_size / 2
    assert_spans_slice(texts, load_tagger(out).predict(texts, threshold=0.05))
    with pytest.raises(ExportCheckFailed, match="drop above"):
        export_onnx(gliner_dir, tmp_path / "strict", check_file=str(check), max_f1_drop=-1.0)
    with pytest.raises(ValueError, match="refused by its export check"):  # kept, never served
        load_tagger(tmp_path / "strict")
    # the CLI at its default bound (half a point): the exit code follows the measured change
    r = CliRunner().invoke(cli(), ["export-onnx", "--model", str(gliner_dir), "--output",
                                   str(tmp_path / "default"), "--check", str(check), "--json"])
    c = json.loads((tmp_path / "default" / "tickertag.json").read_text())["check"]
    assert c["max_f1_drop"] == 0.005 and c["passed"] == (c["torch_f1"] - c["onnx_f1"] <= 0.005)
    assert r.exit_code == (0 if c["passed"] else 1), r.output
    r = CliRunner().invoke(cli(), ["export-onnx", "--model", str(tmp_path / "missing"),
                                   "--output", str(tmp_path / "x"), "--no-check"])
    assert r.exit_code == 1 and "not a model directory" in " ".join(r.output.split())


def test_gliner_resumes_from_the_last_checkpoint(tmp_path):
    from training.runner import run_training

    cfg = TrainConfig(kind="gliner", max_train=16, max_valid=8, epochs=2, output=str(tmp_path))

    first: list[dict] = []

    def crash_after_epoch_2(p: dict) -> None:
        first.append(p)
        if p.get("epoch") == 2:
            raise RuntimeError("host lost")

    with pytest.raises(RuntimeError, match="host lost"):
        run_training(cfg, crash_after_epoch_2)
    assert list((tmp_path / "checkpoints").glob("checkpoint-*"))  # epoch 1's
    again: list[dict] = []
    m = run_training(cfg.model_copy(update={"resume": True}), again.append)
    assert [h["epoch"] for h in m["history"]] == [1, 2]
    # resumed, not redone: only epoch 2 ran again, and epoch 1's record is the first run's
    assert [p["epoch"] for p in again if p.get("status") == "training"] == [2]
    epoch1 = next(p for p in first if p.get("epoch") == 1)
    assert m["history"][0]["elapsed_s"] == epoch1["elapsed_s"]
    # the resumed run's model is the one its manifest describes
    assert (m["threshold"], m["valid_f1"]) == _retuned(tmp_path, cfg)


def test_spanmarker_tiny_run_loads_from_a_moved_directory(tmp_path):
    from training.runner import run_training

    cfg = TrainConfig(kind="spanmarker", max_train=20, max_valid=10, epochs=1,
                      output=str(tmp_path / "sm"))
    m = run_training(cfg)
    assert m["kind"] == "spanmarker" and m["train_headlines"] == 20
    assert (tmp_path / "sm" / "encoder" / "config.json").exists()
    moved = tmp_path / "elsewhere"  # a directory copied to another machine keeps working
    shutil.move(str(tmp_path / "sm"), moved)
    tagger = load_tagger(moved)
    texts = ["UBS Maintains Neutral on Agilent Technologies", HEADLINE, ""]
    assert_spans_slice(texts, tagger.predict(texts, threshold=0.0))


def test_spacy_ner_trains_through_the_cli_and_serves_from_a_moved_directory(tmp_path):
    out = tmp_path / "sp"
    r = CliRunner().invoke(cli(), ["train", "spacy", "--max-train", "200", "--epochs", "3",
                                   "--output", str(out)])
    assert r.exit_code == 0, r.output
    m = json.loads((out / "tickertag.json").read_text())
    assert m["kind"] == "spacy" and m["train_headlines"] == 200 and len(m["history"]) == 3
    assert 1 <= m["best_epoch"] <= 3
    # 200 headlines are enough for spaCy's NER to learn the label (0.6-0.7 valid F1 here)
    assert m["best_epoch_valid_f1"] > 0.4 and m["valid_f1"] == m["best_epoch_valid_f1"]
    moved = tmp_path / "elsewhere"  # the pipeline lives inside the model directory
    shutil.move(str(out), moved)
    tagger = load_tagger(moved)
    texts = ["UBS Maintains Neutral on Agilent Technologies", HEADLINE, ""]
    got = tagger.predict(texts)
    assert_spans_slice(texts, got)
    assert sum(len(x) for x in got) >= 1
    assert all(s.score is None for x in got for s in x)  # no fake certainty


def test_baselines(tmp_path):
    r = CliRunner().invoke(cli(), ["baseline", "gazetteer", "--output", str(tmp_path / "gz")])
    assert r.exit_code == 0, r.output
    gz = load_tagger(tmp_path / "gz")
    texts = ["Mizuho Maintains Buy on Autodesk; Dow Falls",
             "Black Diamond: The New North Face? (BDE, VFC, JAH, AGPDY.PK)",
             "Agilent Technologies (NYSE: A) Up 2%; $TSLA Falls",
             "A Peek Into The Markets: FDA Approvals"]
    got = [[s.text for s in spans] for spans in gz.predict(texts)]
    assert got[0] == ["Mizuho", "Autodesk"]
    assert {"BDE", "VFC", "JAH", "AGPDY.PK"} <= set(got[1])
    assert got[2] == ["Agilent Technologies", "A", "TSLA"]
    assert got[3] == []
    r = CliRunner().invoke(cli(), ["baseline", "spacy", "--output", str(tmp_path / "sp")])
    assert r.exit_code == 0, r.output
    sp = load_tagger(tmp_path / "sp")
    assert_spans_slice(["Goldman Sachs Upgrades Apple"], sp.predict(["Goldman Sachs Upgrades Apple"]))


def test_load_tagger_rejects_a_non_model_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a model directory"):
        load_tagger(tmp_path)


def test_train_job_lock_and_progress(redis_url, tmp_path, run_id):
    from workers.train.jobs import progress_key, read_progress, train_job

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.set(f"{progress_key(run_id)}:lock", "other-host")
    cfg = TrainConfig(max_train=8, max_valid=5, epochs=1, output=str(tmp_path / "m")).model_dump()
    assert "already running" in train_job(run_id, cfg, client)["skipped"]
    client.delete(f"{progress_key(run_id)}:lock")
    res = train_job(run_id, cfg, client)
    assert res["output"] == str(tmp_path / "m")
    manifest = json.loads((tmp_path / "m" / "tickertag.json").read_text())
    assert res["valid_f1"] == manifest["valid_f1"]
    assert (manifest["threshold"], manifest["valid_f1"]) == _retuned(
        tmp_path / "m", TrainConfig.model_validate(cfg))
    prog = read_progress(client, run_id)
    assert prog["status"] == "done" and prog["epoch"] == 1 and "valid_f1" in prog
    assert not client.exists(f"{progress_key(run_id)}:lock")
    assert train_job(run_id, cfg, client)["skipped"] == "already done"  # a redelivery is a no-op


def test_train_queue_runs_a_submitted_job_and_status_shows_it(make_settings, celery_app, monkeypatch,
                                                              redis_url, tmp_path, run_id, request):
    """`tickertag train --submit` -> a real `train` worker process on "another host" (its own
    TICKERTAG_HOME: a container's view of the shared volume) -> a model directory there, with
    progress in Redis that `tickertag status` lists; resubmitting the run is a no-op."""
    import time

    from worker_env import settings_env

    from common.services import start_worker
    from workers.train.jobs import read_progress
    from workers.train.tasks import train_run

    client_home, worker_home = tmp_path / "client", tmp_path / "worker"
    w = start_worker("train", tmp_path / "logs", concurrency=1,
                     env={**settings_env(make_settings()), "TICKERTAG_HOME": str(worker_home)})
    request.addfinalizer(w.stop)
    monkeypatch.setenv("TICKERTAG_HOME", str(client_home))
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps({"max_train": 8, "max_valid": 5, "torch_threads": 1}))
    out = worker_home / "models" / "queued"  # where the client's models/queued is on the worker
    r = CliRunner().invoke(cli(), ["train", "gliner", "--config", str(cfg), "--epochs", "2",
                                   "--output", str(client_home / "models" / "queued"), "--submit",
                                   "--run-id", run_id])
    assert r.exit_code == 0 and f"submitted {run_id}" in r.output, r.output
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    deadline = time.monotonic() + 600
    while read_progress(client, run_id).get("status") not in ("done", "failed"):
        assert time.monotonic() < deadline, w.tail(3000)
        assert w.alive(), w.tail(3000)
        time.sleep(1)
    prog = read_progress(client, run_id)
    assert prog["status"] == "done", prog
    assert prog["epoch"] == 2 and prog["output"] == str(out)
    assert prog["valid_f1"] == json.loads((out / "tickertag.json").read_text())["valid_f1"]
    assert_spans_slice([HEADLINE], load_tagger(out).predict([HEADLINE], threshold=0.05))
    r = CliRunner().invoke(cli(), ["status", "--json"])
    assert r.exit_code == 0, r.output
    listed = {t["run_id"]: t for t in json.loads(r.output.strip().splitlines()[-1])["training"]}
    assert listed[run_id]["status"] == "done" and listed[run_id]["epoch"] == 2
    again = train_run.delay(run_id, TrainConfig(output=str(out)).model_dump()).get(timeout=120)
    assert again == {"run_id": run_id, "skipped": "already done"}
    assert not (client_home / "models").exists()


def test_a_model_directory_cannot_run_code_or_point_outside_itself(tmp_path):
    from training.baselines import build_spacy
    from training.manifest import UnsafeModelDir

    build_spacy(str(tmp_path / "sp"))
    m = json.loads((tmp_path / "sp" / "tickertag.json").read_text())
    (tmp_path / "sp" / "tickertag.json").write_text(json.dumps({**m, "model": "../../etc"}))
    with pytest.raises(UnsafeModelDir, match="outside"):
        load_tagger(tmp_path / "sp")
    d = tmp_path / "gl"
    d.mkdir()
    (d / "gliner_config.json").write_text(json.dumps(
        {"encoder_config": {"auto_map": {"AutoModel": "evil.Model"}}}))
    with pytest.raises(UnsafeModelDir, match="auto_map"):
        load_tagger(d)
    (d / "gliner_config.json").write_text("{}")
    (d / "evil.py").write_text("raise SystemExit('ran code from a model directory')\n")
    with pytest.raises(UnsafeModelDir, match="Python files"):
        load_tagger(d)
    onnx = tmp_path / "ox"
    onnx.mkdir()
    (onnx / "tickertag.json").write_text(json.dumps({"kind": "gliner-onnx",
                                                     "onnx_file": "/etc/passwd"}))
    with pytest.raises(UnsafeModelDir, match="onnx_file"):
        load_tagger(onnx)


def test_a_dead_training_job_is_shown_dead_and_a_resubmission_runs_it(redis_url, tmp_path,
                                                                        run_id):
    """A SIGKILLed train worker left its run 'training' forever: with no heartbeat for longer
    than the lock's TTL and no lock, the run is reported dead and can be run again."""
    import time

    from workers.train.jobs import lock_ttl_s, progress_key, read_progress, train_job

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    stale = time.time() - lock_ttl_s() - 5
    client.hset(progress_key(run_id), mapping={"status": '"training"', "epoch": "1",
                                               "heartbeat_at": json.dumps(stale)})
    p = read_progress(client, run_id)
    assert p["status"] == "dead" and p["heartbeat_age_s"] > lock_ttl_s()
    client.set(f"{progress_key(run_id)}:lock", "alive-host", ex=30)  # its host still holds it
    assert read_progress(client, run_id)["status"] == "training"
    client.delete(f"{progress_key(run_id)}:lock")
    cfg = TrainConfig(kind="spacy", max_train=30, max_valid=10, epochs=1,
                      output=str(tmp_path / "sp")).model_dump()
    assert train_job(run_id, cfg, client)["output"] == str(tmp_path / "sp")
    assert read_progress(client, run_id)["status"] == "done"


def test_the_heartbeat_survives_a_redis_blip(redis_url, run_id):
    import threading

    from workers.train import jobs as train

    real = redis.Redis.from_url(redis_url, decode_responses=True)
    lock = f"{train.progress_key(run_id)}:lock"
    real.set(lock, "me", ex=60)

    class Blip:  # the first renewal meets a connection error, as during a Redis restart
        calls = 0

        def get(self, k):
            Blip.calls += 1
            if Blip.calls == 1:
                raise redis.ConnectionError("Connection reset by peer")
            return real.get(k)

        def __getattr__(self, name):
            return getattr(real, name)

    stop = threading.Event()
    try:
        t = threading.Thread(target=train._heartbeat,
                             args=(Blip(), lock, "me", stop, train.progress_key(run_id), 0.05))
        t.start()
        deadline = time.monotonic() + 60
        while Blip.calls < 3:  # two renewals after the failed one: still beating after it
            assert t.is_alive() and time.monotonic() < deadline, Blip.calls
            time.sleep(0.05)
        assert t.is_alive()
    finally:
        stop.set()
        t.join(2)
    assert real.hget(train.progress_key(run_id), "heartbeat_at")


def test_a_checkpoint_half_written_by_a_killed_host_is_passed_over(tmp_path):
    """benchmarks/faults.py (train-kill) killed a worker while it saved checkpoint-5; resuming
    from that directory failed ("Can't find a valid checkpoint")."""
    from training.selection import last_checkpoint

    ck = tmp_path / "checkpoints"
    (ck / "checkpoint-4").mkdir(parents=True)
    (ck / "checkpoint-4" / "trainer_state.json").write_text("{}")
    (ck / "checkpoint-10").mkdir()
    (ck / "checkpoint-10" / "model.safetensors").write_bytes(b"")  # the kill came here
    assert last_checkpoint(tmp_path) == str(ck / "checkpoint-4")
    (ck / "checkpoint-10" / "trainer_state.json").write_text("{}")
    assert last_checkpoint(tmp_path) == str(ck / "checkpoint-10")  # numeric, not text, order
