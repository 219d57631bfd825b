"""A small distillation run end to end: a teacher tags a pool through the real ``ner`` queue and
worker processes, silver labels are combined and a student is trained, moved and loaded."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import redis

from common.paths import LABELED_DIR, POOL_CSV
from distil.pipeline import run_distil
from distil.plan import DistilPlan
from training.config import TrainConfig
from training.data import norm_text, read_jsonl, write_jsonl
from training.inference import load_tagger
from training.silver import TEST_FILES, protected_texts

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def teacher(tmp_path_factory) -> Path:
    from training.runner import run_training

    out = tmp_path_factory.mktemp("teacher")
    run_training(TrainConfig(kind="spacy", max_train=300, max_valid=40, epochs=2, output=str(out)))
    return out


def _pool_csv(path: Path, n: int) -> list[str]:
    """n pool rows plus three test titles (which must never come back as silver)."""
    with open(POOL_CSV, encoding="utf-8") as f:
        rows = [r for _, r in zip(range(n), csv.DictReader(f), strict=False)]
    tests = [r["text"] for r in read_jsonl(TEST_FILES[0])[:2] + read_jsonl(TEST_FILES[1])[:1]]
    rows += [{"date": "2019-05-01", "title": t, "stock_symbol": "A"} for t in tests]
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["date", "title", "stock_symbol"], extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return tests


def test_distil_through_the_ner_queue_excludes_test_titles_and_resumes(
        teacher, make_settings, tmp_path):
    s = make_settings(batch_size=16)
    redis.Redis.from_url(s.redis_dsn()).delete("ner")  # no batch left by an earlier test
    tests = _pool_csv(tmp_path / "pool.csv", 60)
    labelled = tmp_path / "labelled.jsonl"
    write_jsonl(labelled, read_jsonl(LABELED_DIR / "benzinga_gold_train.jsonl")[:150])
    plan = DistilPlan(teachers=[str(teacher)], pool=str(tmp_path / "pool.csv"),
                      output=str(tmp_path / "student"), work=str(tmp_path / "work"), epochs=1,
                      workers=1, labelled=[str(labelled)],
                      valid=[str(LABELED_DIR / "benzinga_gold_valid.jsonl")])
    said: list[str] = []
    res = run_distil(plan, s, say=said.append)

    pool = read_jsonl(tmp_path / "work" / "pool.jsonl")
    prot = protected_texts()
    assert not any(norm_text(r["text"]) in prot for r in pool)
    assert len(pool) >= 50  # 60 rows, a few duplicate titles at most
    silver = read_jsonl(tmp_path / "work" / "silver.jsonl")
    assert {r["id"] for r in silver} == {r["id"] for r in pool}  # every headline came back
    assert not {norm_text(t) for t in tests} & {norm_text(r["text"]) for r in silver}
    assert sum(len(r["entities"]) for r in silver) > 0
    meta = json.loads((tmp_path / "work" / "silver.json").read_text())
    assert meta["teachers"][0]["dead"] == 0 and meta["teachers"][0]["tagged"] == len(pool)

    m = res["manifest"]
    assert m["kind"] == "spacy" and m["distil"]["silver_headlines"] == len(silver)
    # the agreement filter is on by default; one teacher never disagrees, so no copy is made
    assert m["distil"]["drop_contested"] is True and m["distil"]["silver"].endswith("silver.jsonl")
    assert m["train_headlines"] == 150 + len(silver)  # labelled rows keep their own labels
    moved = tmp_path / "moved-student"
    shutil.move(str(tmp_path / "student"), moved)
    out = load_tagger(moved).predict(["UBS Maintains Neutral on Agilent Technologies"])
    assert len(out) == 1

    # a rerun of the silver step resumes the same run: nothing is tagged twice
    again = run_distil(plan, s, steps=["silver"], say=said.append)
    meta = json.loads((tmp_path / "work" / "silver.json").read_text())
    assert meta["teachers"][0]["enqueued"] == 0
    assert meta["teachers"][0]["already_done"] == len(pool)
    assert again["silver"].endswith("silver.jsonl")


def test_contested_headlines_are_left_out_by_default_and_kept_on_request(make_settings, tmp_path):
    work = tmp_path / "work"
    rows = read_jsonl(LABELED_DIR / "benzinga_gold_train.jsonl")[:60]
    silver = [{"id": f"h{i}", "text": r["text"], "entities": r["entities"], "teachers": 2,
               "agreement": 0.5 if i % 3 == 0 else 1.0} for i, r in enumerate(rows)]
    write_jsonl(work / "silver.jsonl", silver)
    labelled = tmp_path / "labelled.jsonl"
    write_jsonl(labelled, read_jsonl(LABELED_DIR / "benzinga_gold_train.jsonl")[100:140])
    plan = DistilPlan(teachers=[], output=str(tmp_path / "student"), work=str(work), epochs=1,
                      workers=0, labelled=[str(labelled)],
                      valid=[str(LABELED_DIR / "benzinga_gold_valid.jsonl")])
    said: list[str] = []
    m = run_distil(plan, make_settings(), steps=["student"], say=said.append)["manifest"]
    agreed = read_jsonl(work / "silver-agreed.jsonl")
    assert {r["id"] for r in agreed} == {r["id"] for r in silver if r["agreement"] == 1.0}
    assert m["distil"]["silver_headlines"] == 40 and m["distil"]["drop_contested"] is True
    assert m["train_headlines"] == 40 + 40
    assert any("20 silver headlines where the teachers disagree left out" in s for s in said)

    plan.drop_contested, plan.output = False, str(tmp_path / "student-kept")  # --keep-contested
    m = run_distil(plan, make_settings(), steps=["student"], say=said.append)["manifest"]
    assert m["distil"]["silver_headlines"] == 60 and m["train_headlines"] == 40 + 60


def test_a_refused_teacher_fails_before_anything_is_queued(teacher, make_settings, tmp_path):
    refused = tmp_path / "refused"
    shutil.copytree(teacher, refused)
    m = json.loads((refused / "tickertag.json").read_text())
    m["check"] = {"passed": False, "onnx_f1": 0.80, "torch_f1": 0.95, "max_f1_drop": 0.005}
    (refused / "tickertag.json").write_text(json.dumps(m))
    s = make_settings(batch_size=16)
    r = redis.Redis.from_url(s.redis_dsn())
    r.delete("ner")
    _pool_csv(tmp_path / "pool.csv", 10)
    plan = DistilPlan(teachers=[str(refused)], pool=str(tmp_path / "pool.csv"),
                      output=str(tmp_path / "student"), work=str(tmp_path / "work"), workers=1)
    with pytest.raises(ValueError, match="refused by its export check"):
        run_distil(plan, s, steps=["pool", "silver"], say=lambda _m: None)
    assert r.llen("ner") == 0 and not (tmp_path / "work" / "silver.jsonl").exists()


def test_rerunning_the_silver_step_retries_its_dead_letters(teacher, make_settings, tmp_path,
                                                           monkeypatch):
    """A teacher whose weights vanish after the check dead-letters every batch; the step fails
    with the count, and once the weights are back, running the step again tags them all."""
    t = tmp_path / "teacher"
    shutil.copytree(teacher, t)
    # the check passed while the weights were there; they vanish before the workers load them
    monkeypatch.setattr("training.inference.servable_manifest", lambda _d: {})
    (t / "pipeline").rename(tmp_path / "pipeline.away")
    s = make_settings(batch_size=16)
    redis.Redis.from_url(s.redis_dsn()).delete("ner")
    _pool_csv(tmp_path / "pool.csv", 20)
    plan = DistilPlan(teachers=[str(t)], pool=str(tmp_path / "pool.csv"),
                      output=str(tmp_path / "student"), work=str(tmp_path / "work"), workers=1)
    with pytest.raises(RuntimeError, match="tagged none of the pool"):
        run_distil(plan, s, steps=["pool", "silver"], say=lambda _m: None)
    (tmp_path / "pipeline.away").rename(t / "pipeline")
    run_distil(plan, s, steps=["silver"], say=lambda _m: None)
    meta = json.loads((tmp_path / "work" / "silver.json").read_text())
    pool = read_jsonl(tmp_path / "work" / "pool.jsonl")
    assert meta["teachers"][0]["requeued"] == len(pool) == meta["headlines"]
    assert meta["teachers"][0]["tagged"] == len(pool)
