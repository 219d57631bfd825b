"""The README's first command, end to end at a small size: the local LLM through the annotate
queue, curation, the LLM scored on gold, the compact model trained and scored, the sample tagged
through the ner queue, and the closing table."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.metrics import score
from common.store import ResultStore
from tickertag.demo import TEST_FILES, DemoOptions, run_demo
from training.data import read_jsonl, spans_of
from training.inference import load_tagger

pytestmark = pytest.mark.slow


def _llm_f1_from_the_store(s, n: int) -> float:
    """F1 of the LLM answers the demo's gold run stored, on the first ``n`` gold test
    headlines, recomputed from the result store."""
    gold = read_jsonl(TEST_FILES[0])[:n]
    by_text = {r["text"]: r for r in ResultStore(s.results_dir, f"{s.run_id}-llm-test")
               .iter_results()}
    assert len(by_text) == n  # every gold headline answered: a score of all of them
    return score([spans_of(g) for g in gold], [by_text[g["text"]]["entities"] for g in gold]).f1


def _model_f1(model_dir: Path) -> float:
    rows = [r for f in TEST_FILES for r in read_jsonl(f)]
    pred = load_tagger(model_dir).predict([r["text"] for r in rows])
    return score([spans_of(r) for r in rows], pred).f1


def test_demo_runs_the_whole_loop(llm_server, make_settings, tmp_path, celery_app):
    s = make_settings(llm_base_url=llm_server, llm_model="smollm2-test", request_timeout_s=120,
                      batch_size=8, run_id="demo-test", max_batches_in_flight=64)
    o = DemoOptions(limit=8, run_id=s.run_id, llm_test_headlines=4,
                    model_dir=str(tmp_path / "model"), epochs=1, logs=tmp_path / "logs")
    said: list[str] = []
    rows = run_demo(o, s, say=said.append, llm_up=True)
    text = "\n".join(said)
    for step in ("[1/5]", "[2/5]", "[3/5]", "[4/5]", "[5/5]"):
        assert step in text, text
    assert (Path(s.results_dir) / s.run_id / "curated").is_dir()
    llm, compact = rows
    assert llm["on"] == "4 test headlines" and llm["f1"] == _llm_f1_from_the_store(s, 4)
    assert compact["on"] == "608 test headlines" and compact["f1"] > 0.5  # 1 epoch on 3,200
    assert compact["f1"] == _model_f1(tmp_path / "model")  # the table's F1 is the model's
    tagged = list(ResultStore(s.results_dir, f"{s.run_id}-tag").iter_results())
    assert len({r["id"] for r in tagged}) == 2902  # the whole bundled sample (distinct titles)
    assert compact["usd_per_million"] < llm["usd_per_million"]
    assert (tmp_path / "model" / "tickertag.json").exists()
