"""A teacher's tagging run is named by the teacher's fingerprint, not its directory: a teacher
retrained into the same directory tags the pool afresh through the real ``ner`` queue and
worker, instead of getting the old model's silver labels back as "already done"."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import redis
from gazetteer_models import gazetteer

from distil.pipeline import run_distil
from distil.plan import DistilPlan
from training.data import read_jsonl

pytestmark = pytest.mark.slow

TITLES = ["Acme Widgets Shares Rise After Earnings Beat", "Globex Foods To Acquire Initech",
          "Acme Widgets And Globex Foods Agree To Merge", "Markets Close Higher On Rate Hopes"]


def _names(silver: list[dict]) -> set[str]:
    return {e["text"] for r in silver for e in r["entities"]}


def test_a_teacher_retrained_in_place_tags_the_pool_again(make_settings, tmp_path: Path):
    s = make_settings(batch_size=2)
    redis.Redis.from_url(s.redis_dsn()).delete("ner")  # no batch left by an earlier test
    pool = tmp_path / "pool.csv"
    with open(pool, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["date", "title", "stock_symbol"])
        w.writeheader()
        w.writerows({"date": "2021-03-01", "title": t, "stock_symbol": "X"} for t in TITLES)
    teacher = tmp_path / "teacher"
    plan = DistilPlan(teachers=[str(teacher)], pool=str(pool), output=str(tmp_path / "student"),
                      work=str(tmp_path / "work"), workers=1)
    meta_file = tmp_path / "work" / "silver.json"

    gazetteer(teacher, ["Acme Widgets"])
    run_distil(plan, s, steps=["pool", "silver"], say=lambda _m: None)
    first = json.loads(meta_file.read_text())["teachers"][0]
    assert first["tagged"] == len(TITLES) and first["already_done"] == 0
    assert _names(read_jsonl(tmp_path / "work" / "silver.jsonl")) == {"Acme Widgets"}

    gazetteer(teacher, ["Globex Foods"])  # retrained into the same directory
    run_distil(plan, s, steps=["silver"], say=lambda _m: None)
    second = json.loads(meta_file.read_text())["teachers"][0]
    assert second["already_done"] == 0 and second["enqueued"] == len(TITLES)
    assert _names(read_jsonl(tmp_path / "work" / "silver.jsonl")) == {"Globex Foods"}
    assert second["fingerprint"] != first["fingerprint"] and second["run"] != first["run"]

    # the same teacher again: its run resumes, nothing is tagged twice
    run_distil(plan, s, steps=["silver"], say=lambda _m: None)
    third = json.loads(meta_file.read_text())["teachers"][0]
    assert third["run"] == second["run"] and third["already_done"] == len(TITLES)
