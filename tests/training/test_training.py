"""CI-sized real training runs on the packaged MiniLM encoder, and the predict/evaluate CLIs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis
from typer.testing import CliRunner

from common.settings import LABELED_DIR
from training.config import TrainConfig
from training.inference import load_tagger

TEST = str(LABELED_DIR / "benzinga_gold_test.jsonl")


def cli():
    from tickertag.cli import _register_all, app

    if not app.registered_commands:
        _register_all()
    return app


@pytest.fixture(scope="module")
def gliner_dir(tmp_path_factory) -> Path:
    from training.runner import run_training

    out = tmp_path_factory.mktemp("gliner")
    cfg = TrainConfig(kind="gliner", max_train=40, max_valid=20, epochs=1, output=str(out))
    m = run_training(cfg)
    assert m["kind"] == "gliner" and m["train_headlines"] == 40 and len(m["history"]) == 1
    return out


def test_gliner_saves_reloads_offline_and_predicts(gliner_dir):
    assert (gliner_dir / "tickertag.json").exists()
    tagger = load_tagger(gliner_dir)
    texts = ["Mizuho Maintains Buy on Autodesk, Raises Price Target to $250", ""]
    out = tagger.predict(texts, threshold=0.05)
    assert len(out) == 2 and out[1] == []
    for s in out[0]:
        assert texts[0][s.start:s.end] == s.text and s.label == "Company" and 0 <= s.score <= 1


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
            assert p["text"][e["start"]:e["end"]] == e["text"]
    r = CliRunner().invoke(cli(), ["evaluate", "--gold", str(gold), "--pred", str(out), "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.output.strip().splitlines()[-1])
    assert 0.0 <= res["f1"] <= 1.0 and res["n_docs"] == 15
    assert res["tp"] + res["fn"] == sum(len(x["entities"]) for x in rows)
    # a perfect prediction scores 1.0 through the same CLI
    r = CliRunner().invoke(cli(), ["evaluate", "--gold", str(gold), "--pred", str(gold), "--json"])
    assert json.loads(r.output.strip().splitlines()[-1])["f1"] == 1.0


def test_spanmarker_tiny_run(tmp_path):
    from training.runner import run_training

    cfg = TrainConfig(kind="spanmarker", max_train=20, max_valid=10, epochs=1,
                      output=str(tmp_path / "sm"), learning_rate=1e-4)
    m = run_training(cfg)
    assert m["kind"] == "spanmarker"
    tagger = load_tagger(tmp_path / "sm")
    t = "UBS Maintains Neutral on Agilent Technologies"
    for s in tagger.predict([t], threshold=0.0)[0]:
        assert t[s.start:s.end] == s.text


def test_baselines(tmp_path):
    r = CliRunner().invoke(cli(), ["baseline", "gazetteer", "--output", str(tmp_path / "gz")])
    assert r.exit_code == 0, r.output
    gz = load_tagger(tmp_path / "gz")
    t = "Mizuho Maintains Buy on Autodesk; Dow Falls"
    assert [s.text for s in gz.predict([t])[0]] == ["Mizuho", "Autodesk"]
    CliRunner().invoke(cli(), ["baseline", "spacy", "--output", str(tmp_path / "sp")])
    sp = load_tagger(tmp_path / "sp")
    for s in sp.predict(["Goldman Sachs Upgrades Apple"])[0]:
        assert "Goldman Sachs Upgrades Apple"[s.start:s.end] == s.text


def test_train_job_lock_and_progress(redis_url, tmp_path, run_id):
    from workers.train import progress_key, train_job

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.set(f"{progress_key(run_id)}:lock", "other-host")
    cfg = TrainConfig(max_train=8, max_valid=5, epochs=1, output=str(tmp_path / "m")).model_dump()
    assert "already running" in train_job(run_id, cfg, client)["skipped"]
    client.delete(f"{progress_key(run_id)}:lock")
    res = train_job(run_id, cfg, client)
    assert res["output"] == str(tmp_path / "m")
    prog = client.hgetall(progress_key(run_id))
    assert json.loads(prog["status"]) == "done" and json.loads(prog["epoch"]) == 1
    assert not client.exists(f"{progress_key(run_id)}:lock")
