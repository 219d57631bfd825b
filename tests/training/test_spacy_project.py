"""The student's recipe in spaCy's own terms: the shipped ``config.cfg`` is the TOML recipe's
rendering, the custom loop and ``python -m spacy train`` build the same model, the corpora hold
the rows' spans, and a pipeline spaCy trained becomes a model directory ``predict`` takes."""

from __future__ import annotations

import json
import subprocess
import sys

from spacy.tokens import DocBin

from common.metrics import score
from common.spans import LABEL
from training.config import CONFIGS_DIR, TrainConfig
from training.data import read_training_rows, read_valid_rows, spans_of
from training.spacy_project import (
    DEV_CORPUS,
    TRAIN_CORPUS,
    export_project,
    import_pipeline,
    spacy_config,
)

TINY = {"start": "blank", "width": 16, "depth": 1, "embed_rows": [200, 50, 50, 50],
        "averages": True}


def test_the_shipped_config_is_the_student_recipe_rendered():
    text = (CONFIGS_DIR / "student.cfg").read_text()
    shipped = "".join(x for x in text.splitlines(keepends=True) if not x.startswith("#"))
    assert shipped == spacy_config(TrainConfig.from_file("student")).to_str(), \
        "training/configs/student.cfg drifted from student.toml: write it again with " \
        "spacy_config(TrainConfig.from_file('student')).to_disk(...)"


def test_the_rendered_training_block_follows_the_recipe():
    cfg = TrainConfig.from_file("student", epochs=7, seed=5, learning_rate=0.002)
    t = spacy_config(cfg, train_headlines=1000)["training"]
    assert (t["max_epochs"], t["dropout"], t["optimizer"]["use_averages"]) == (7, 0.2, True)
    assert t["optimizer"]["learn_rate"] == 0.002
    size = t["batcher"]["size"]
    assert (size["start"], size["stop"], size["compound"]) == (8.0, 64.0, 1.001)
    assert t["batcher"]["@batchers"] == "spacy.batch_by_sequence.v1"  # headlines, not words
    # about one evaluation an epoch: 7 x 1,000 headlines in batches growing from 8 towards 64
    # under one schedule: fewer steps than in batches of 8, more than in batches of 64
    assert 1000 / 64 < t["eval_frequency"] < 1000 / 8


def test_a_recipe_spacy_cannot_train_from_blank_is_refused():
    import pytest

    with pytest.raises(ValueError, match="blank spaCy recipes"):
        spacy_config(TrainConfig.from_file("teacher"))


def _cfg(tmp_path, **kw) -> TrainConfig:
    return TrainConfig(kind="spacy", max_train=60, epochs=2, seed=3, spacy=TINY,
                       output=str(tmp_path / "custom"), **kw)


def test_corpora_hold_the_rows_the_custom_loop_trains_on(tmp_path):
    cfg = _cfg(tmp_path)
    res = export_project(cfg, tmp_path / "project")
    import spacy

    from training.data import subset

    nlp = spacy.blank("en")
    docs = list(DocBin().from_disk(tmp_path / "project" / TRAIN_CORPUS).get_docs(nlp.vocab))
    rows = subset(read_training_rows(cfg.train, cfg.valid), cfg.max_train, cfg.seed)
    assert [d.text for d in docs] == [r["text"] for r in rows]
    got = {(i, e.start_char, e.end_char) for i, d in enumerate(docs) for e in d.ents}
    want = {(i, s.start, s.end) for i, r in enumerate(rows) for s in spans_of(r)}
    assert got <= want and len(want) - len(got) == res["spans_dropped"]
    assert all(e.label_ == LABEL for d in docs for e in d.ents)
    dev = list(DocBin().from_disk(tmp_path / "project" / DEV_CORPUS).get_docs(nlp.vocab))
    assert len(dev) == res["valid_headlines"] == len(read_valid_rows(cfg.valid))


def test_spacy_train_builds_the_custom_loops_model_and_predict_takes_it(tmp_path):
    from spacy.util import load_config

    from training.spacy_parts import PIPELINE_DIR
    from training.spacy_trainer import train_spacy

    cfg = _cfg(tmp_path)
    export_project(cfg, tmp_path / "project")
    subprocess.run([sys.executable, "-m", "spacy", "train", "config.cfg", "--output", "out"],
                   cwd=tmp_path / "project", check=True, capture_output=True)
    best = tmp_path / "project" / "out" / "model-best"
    train_spacy(cfg)  # the custom loop, same recipe
    custom = load_config(tmp_path / "custom" / PIPELINE_DIR / "config.cfg")
    spacys = load_config(best / "config.cfg")
    assert spacys["components"] == custom["components"]  # one architecture, both loops

    m = import_pipeline(best, tmp_path / "imported", cfg)
    inp = tmp_path / "in.jsonl"
    rows = read_valid_rows(cfg.valid)[:30]
    inp.write_text("".join(json.dumps({"text": r["text"]}) + "\n" for r in rows))
    out = tmp_path / "out.jsonl"
    subprocess.run([sys.executable, "-m", "tickertag", "predict", "--model",
                    str(tmp_path / "imported"), "--input", str(inp), "--output", str(out)],
                   check=True, capture_output=True)
    pred = [json.loads(x)["entities"] for x in out.read_text().splitlines()]
    assert len(pred) == len(rows)
    assert m["kind"] == "spacy" and m["trained_by"] == "python -m spacy train"
    # the manifest's valid F1 is the project's scorer on every valid row
    import spacy

    from training.spacy_parts import predict_spans

    every = read_valid_rows(cfg.valid)
    nlp = spacy.load(best)
    f1 = score([spans_of(r) for r in every], predict_spans(nlp, [r["text"] for r in every])).f1
    assert m["valid_f1"] == f1
