"""Two cascade rounds end to end on a small pool, every part real: two compact teachers tag the
pool through the ``ner`` queue, the contested headlines go through the ``annotate`` queue to the
replay endpoint (the recorded strong-LLM answers), the headlines where the LLM agrees with no
teacher go to a real Argilla server where a scripted reviewer answers from the reviewed
recording, the student trains on the result, the teachers retrain on the escalated labels and
round two runs with them."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from worker_env import settings_env

from cascade.loop import STEPS, CascadePlan, run_cascade
from cascade.replay import RECORDING, REVIEWED, Recording
from common.ledger import RunLedger
from common.paths import LABELED_DIR, POOL_CSV
from training.config import TrainConfig
from training.data import norm_text, read_jsonl, write_jsonl
from training.inference import load_tagger, read_manifest
from training.silver import TEST_FILES

pytestmark = pytest.mark.slow
TICKERTAG = str(Path(sys.executable).parent / "tickertag")


@pytest.fixture(scope="module")
def teachers(tmp_path_factory) -> list[str]:
    """Two small teachers that disagree often (different data, different seeds)."""
    from training.runner import run_training

    out = []
    for seed, n in ((1, 300), (2, 160)):
        d = tmp_path_factory.mktemp(f"teacher-{seed}")
        run_training(TrainConfig(kind="spacy", max_train=n, max_valid=40, epochs=2, seed=seed,
                                 output=str(d)))
        out.append(str(d))
    return out


def _pool(path: Path) -> list[str]:
    """40 recorded (strong-LLM) headlines, 20 the recording lacks, 2 test titles."""
    rec = list(Recording.load(RECORDING).rows.values())[:40]
    known = {norm_text(r["text"]) for r in Recording.load(RECORDING).rows.values()}
    with open(POOL_CSV, encoding="utf-8") as f:
        other = [r for r in csv.DictReader(f) if norm_text(r["title"]) not in known][:20]
    tests = [r["text"] for r in read_jsonl(TEST_FILES[0])[:2]]
    rows = ([{"date": r["date"], "title": r["text"], "stock_symbol": r["stock_symbol"]} for r in rec]
            + [{k: r[k] for k in ("date", "title", "stock_symbol")} for r in other]
            + [{"date": "2019-05-01", "title": t, "stock_symbol": "A"} for t in tests])
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["date", "title", "stock_symbol"])
        w.writeheader()
        w.writerows(rows)
    return tests


def _spans(row: dict) -> set[tuple[int, int]]:
    return {(e["start"], e["end"]) for e in row.get("entities") or []}


def test_two_cascade_rounds_through_the_queues_argilla_and_retrained_teachers(
        teachers, make_settings, argilla, tmp_path, monkeypatch):
    s = make_settings(batch_size=8)
    r = redis.Redis.from_url(s.redis_dsn())
    r.delete("ner", "annotate")
    monkeypatch.setenv("TICKERTAG_ARGILLA_URL", argilla.url)
    monkeypatch.setenv("TICKERTAG_ARGILLA_API_KEY", argilla.api_key.get_secret_value())
    monkeypatch.setenv("TICKERTAG_ARGILLA_DATASET_PREFIX", f"cascade-{tmp_path.name[-8:]}")
    tests = _pool(tmp_path / "pool.csv")
    labelled = tmp_path / "labelled.jsonl"
    write_jsonl(labelled, read_jsonl(LABELED_DIR / "benzinga_gold_train.jsonl")[:150])
    plan = CascadePlan(teachers=teachers, pool=str(tmp_path / "pool.csv"),
                       output=str(tmp_path / "student"), work=str(tmp_path / "work"), rounds=2,
                       max_share=0.5, replay=str(RECORDING), review_from=str(REVIEWED),
                       workers=1, student_epochs=1, teacher_epochs=1, labelled=[str(labelled)],
                       teacher_jobs=2,  # each retrained in its own process, side by side
                       valid=[str(LABELED_DIR / "benzinga_gold_valid.jsonl")])
    said: list[str] = []
    res = run_cascade(plan, s, say=said.append)

    work = tmp_path / "work"
    pool = read_jsonl(work / "pool.jsonl")
    assert len(pool) == 60 and not {norm_text(t) for t in tests} & {norm_text(p["text"]) for p in pool}
    r1, r2 = res["rounds"]
    d1 = work / "round-1"

    # -- the LLM was asked about the contested headlines only, most uncertain first, within budget
    t = [read_jsonl(d1 / f"teacher-{k}.jsonl") for k in range(2)]
    by = [{x["id"]: x for x in rows} for rows in t]
    contested = {h for h in by[0] if _spans(by[0][h]) != _spans(by[1][h])}
    asked = read_jsonl(d1 / "escalate.jsonl")
    assert r1["llm"]["contested"] == len(contested) > 0
    assert {a["id"] for a in asked} <= contested and len(asked) == min(len(contested), 30)
    assert [a["uncertainty"] for a in asked] == sorted((a["uncertainty"] for a in asked), reverse=True)
    rec = Recording.load(RECORDING)
    lacking = sum(1 for a in asked if a["text"] not in rec)
    llm = {x["id"]: x for x in read_jsonl(d1 / "llm.jsonl")}
    assert r1["llm"]["dead"] == lacking and r1["llm"]["answered"] == len(asked) - lacking
    assert r1["llm"]["dead_by_kind"] == ({"http": lacking} if lacking else {})
    for x in llm.values():  # the recorded spans, through the real client and aligner
        assert _spans(x) == _spans(rec.row(x["text"])), x["text"]

    # -- the ledger and `status` price the calls against the whole pool
    ledger = RunLedger.from_url(s.redis_dsn(), r1["llm"]["run"])
    assert ledger.meta()["pool_headlines"] == "60"
    env = {**os.environ, **settings_env(s)}
    p = subprocess.run([TICKERTAG, "status", "--run", r1["llm"]["run"], "--json"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    esc = json.loads(p.stdout)["escalation"]
    assert esc["llm_calls"] == r1["llm"]["llm_calls"] == len(llm)  # a 404 is one call, no retry
    assert esc["calls_share_of_pool"] == round(len(llm) / 60, 4)
    assert 0 < esc["llm_cost_usd"] < esc["whole_pool_cost_usd"]

    # -- people got exactly the headlines where the LLM agrees with no teacher, and answered
    people = read_jsonl(d1 / "people.jsonl")
    expect = {h for h, x in llm.items() if _spans(x) not in (_spans(by[0][h]), _spans(by[1][h]))}
    assert {x["id"] for x in people} == expect and r1["people"]["sent"] == len(expect)
    reviewed = Recording.load(REVIEWED)
    assert expect  # two small teachers and a strong LLM: some headlines have three answers
    assert r1["people"]["answered"] == len(expect) and r1["people"]["pending"] == 0
    pulled = {x["id"]: x for x in read_jsonl(d1 / "reviewed" / "people.jsonl")}
    assert set(pulled) == expect
    for x in pulled.values():
        assert _spans(x) == _spans(reviewed.row(x["text"]))

    # -- the labels: people > LLM > vote; unanswered contested rows stay out of training
    labels = {x["id"]: x for x in read_jsonl(d1 / "labels.jsonl")}
    for hid in contested:
        src = labels[hid]["label_source"]
        assert src == ("people" if hid in expect else "llm" if hid in llm else "contested")
    srcs = r1["student"]["labels"]
    assert srcs["llm"] == len(llm) - len(expect) and srcs.get("people", 0) == len(expect)
    agreed = sum(1 for x in labels.values() if x["agreement"] >= 1.0)
    assert r1["student"]["train_headlines"] == 150 + agreed

    # -- round one retrained both teachers on their files + the escalated labels; round two ran
    nxt = json.loads((work / "round-2" / "teachers.json").read_text())["teachers"]
    assert r2["teachers"] == nxt and len(nxt) == 2
    for d in nxt:
        assert read_manifest(Path(d))["config"]["train"][-1].endswith("escalated-labels.jsonl")
    assert len(read_jsonl(work / "round-2" / "escalated-labels.jsonl")) == len(llm)
    # side by side (two processes), each teacher kept its own recipe and its place in the list
    assert [read_manifest(Path(d))["config"]["seed"] for d in nxt] == [1, 2]
    assert sum(1 for m in said if m.startswith("teacher ") and " retrained: " in m) == 2
    d2 = work / "round-2"
    t2 = [{x["id"]: x for x in read_jsonl(d2 / f"teacher-{k}.jsonl")} for k in range(2)]
    assert r2["llm"]["contested"] == sum(1 for h in t2[0] if _spans(t2[0][h]) != _spans(t2[1][h]))
    texts = [x["text"] for x in pool]
    assert (load_tagger(tmp_path / "student").predict(texts)
            == load_tagger(r2["student"]["dir"]).predict(texts))  # the last round's student
    assert any("sent to Argilla" in m for m in said)

    # -- rerunning round one's LLM step resumes its run: nothing is asked twice
    calls = ledger.stats()["llm_calls"]
    plan.rounds = 1
    again = run_cascade(plan, s, steps=["llm"], say=said.append)["rounds"][0]["llm"]
    assert again["run"] == r1["llm"]["run"] and ledger.stats()["llm_calls"] == calls
    assert set(STEPS) >= {"tag", "llm", "people", "student", "teachers"}
