"""Reading labelled files and turning them into trainer examples (no model needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from common.paths import CODE_ROOT, LABELED_DIR
from common.spans import Span
from common.tokens import iob_to_char_spans, to_gliner, to_spanmarker, token_to_char_spans, tokenize
from training.config import TrainConfig
from training.data import read_jsonl, read_training_rows, spans_of
from training.gliner_trainer import gliner_examples

GOLD = {s: LABELED_DIR / f"benzinga_gold_{s}.jsonl" for s in ("train", "valid", "test")}


def _write(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_every_gold_span_survives_both_trainer_formats():
    """char spans -> GLiNER / SpanMarker tokens -> char spans is the identity on real data."""
    n = 0
    for path in GOLD.values():
        for r in read_jsonl(path):
            text, spans = r["text"], spans_of(r)
            bounds = [b for s in spans for b in (s.start, s.end)]
            toks = tokenize(text, bounds)
            g = to_gliner(text, spans, label="company")
            assert g["tokenized_text"] == [t for t, _, _ in toks]
            back = token_to_char_spans(text, toks, g["ner"])
            assert [(s.start, s.end) for s in back] == [(s.start, s.end) for s in spans]
            sm = to_spanmarker(text, spans)
            back = iob_to_char_spans(text, toks, sm["ner_tags"])
            assert [(s.start, s.end, s.text) for s in back] == [(s.start, s.end, s.text) for s in spans]
            n += len(spans)
    assert n == 1977 + 279 + 245


def test_gliner_examples_use_the_prompt_label_and_inclusive_ends():
    rows = [{"text": "Mizuho Maintains Buy on Autodesk, Raises PT",
             "spans": [Span(start=0, end=6, text="Mizuho"), Span(start=24, end=32, text="Autodesk")]}]
    ex = gliner_examples(rows, "company")[0]
    assert ex["ner"] == [[0, 0, "company"], [4, 4, "company"]]
    assert ex["tokenized_text"][4] == "Autodesk" and ex["tokenized_text"][5] == ","


def test_possessive_splits_inside_a_word():
    text = "Apple's Stock Rises"
    ex = to_spanmarker(text, [Span(start=0, end=5, text="Apple")])
    assert ex["tokens"][:3] == ["Apple", "'", "s"] and ex["ner_tags"][:2] == [1, 0]


def test_read_jsonl_names_the_bad_line(tmp_path):
    bad = _write(tmp_path / "bad.jsonl", [
        {"text": "Apple Rises", "entities": [{"start": 0, "end": 5, "text": "Apple"}]},
        {"text": "Apple Rises", "entities": [{"start": 0, "end": 4, "text": "Apple"}]},
    ])
    with pytest.raises(ValueError, match=r"bad.jsonl:2: field 'entities'"):
        read_jsonl(bad)


def test_training_rows_dedupe_first_file_wins_and_skip_valid(tmp_path):
    gold = _write(tmp_path / "gold.jsonl", [
        {"text": "Apple Rises", "entities": [{"start": 0, "end": 5, "text": "Apple"}]}])
    llm = _write(tmp_path / "llm.jsonl", [
        {"text": "apple  rises", "entities": []},  # same headline, weaker label: dropped
        {"text": "IBM Falls", "entities": [{"start": 0, "end": 3, "text": "IBM"}]},
        {"text": "Dow Gains", "entities": []}])
    valid = _write(tmp_path / "valid.jsonl", [{"text": "Dow Gains", "entities": []}])
    rows = read_training_rows([gold, llm], valid)
    assert [r["text"] for r in rows] == ["Apple Rises", "IBM Falls"]
    assert [s.text for s in rows[0]["spans"]] == ["Apple"]


def test_real_llm_file_adds_only_headlines_gold_lacks():
    rows = read_training_rows([str(GOLD["train"]), str(LABELED_DIR / "benzinga_llm_train.jsonl")],
                              str(GOLD["valid"]))
    assert len(rows) == 1600  # 1,335 reviewed + 265 LLM-only


def test_config_files_and_kind_defaults(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text('kind = "spanmarker"\nepochs = 3\ntrain = ["a.jsonl"]\n')
    cfg = TrainConfig.from_file(toml, output="out")
    assert (cfg.kind, cfg.epochs, cfg.train, cfg.output) == ("spanmarker", 3, ["a.jsonl"], "out")
    assert cfg.learning_rate == 1e-4  # SpanMarker's default, not GLiNER's
    yml = tmp_path / "c.yaml"
    yml.write_text("kind: gliner\nlearning_rate: 3.0e-5\n")
    cfg = TrainConfig.from_file(yml, epochs=None)
    assert cfg.learning_rate == 3e-5 and cfg.epochs == 10 and cfg.output.endswith("models/gliner")
    assert TrainConfig.from_file(CODE_ROOT / "training/configs/gliner_benzinga.toml").max_width == 8
    toml.write_text("epoch = 3\n")  # a typo is an error, not a silent default
    with pytest.raises(ValidationError):
        TrainConfig.from_file(toml)
