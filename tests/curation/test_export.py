"""Export: JSONL with character spans, a loadable DatasetDict, trainer forms that convert back."""

from __future__ import annotations

import json
from pathlib import Path

from datasets import load_from_disk

from common.spans import Span
from common.tokens import iob_to_char_spans, token_to_char_spans, tokenize
from workers.curate.export import export_splits

ROW = {"id": "h1", "text": "Agilent Technologies Inc. beats; Apple's iPhone sales rise",
       "date": "2012-03-01", "stock_symbol": "A",
       "entities": [{"start": 0, "end": 25, "label": "Company", "text": "Agilent Technologies Inc.",
                     "cluster": "c00000", "representative": "Agilent"},
                    {"start": 33, "end": 38, "label": "Company", "text": "Apple",
                     "cluster": "c00001", "representative": "Apple"}],
       "clusters": ["c00000", "c00001"]}


def test_export_writes_every_form_and_they_agree(tmp_path: Path):
    bad = {**ROW, "id": "h2", "entities": [{**ROW["entities"][0], "end": 24}]}  # text mismatch
    rep = export_splits({"train": [ROW, bad], "valid": [], "test": []}, tmp_path)
    assert rep == {"splits": {"train": 1, "valid": 0, "test": 0}, "invalid_spans": ["h2"]}
    dd = load_from_disk(str(tmp_path / "hf"))
    assert set(dd) == {"train", "valid", "test"} and len(dd["valid"]) == 0
    assert dd["train"][0]["entities"][0]["representative"] == "Agilent"
    row = json.loads((tmp_path / "train.jsonl").read_text())
    spans = [Span(**{k: e[k] for k in ("start", "end", "label", "text")}) for e in row["entities"]]
    toks = tokenize(row["text"], [b for s in spans for b in (s.start, s.end)])
    g = json.loads((tmp_path / "gliner" / "train.jsonl").read_text())
    sm = json.loads((tmp_path / "spanmarker" / "train.jsonl").read_text())
    assert g["tokenized_text"] == sm["tokens"] == [t for t, _, _ in toks]
    assert token_to_char_spans(row["text"], toks, g["ner"]) == spans
    assert [s.text for s in iob_to_char_spans(row["text"], toks, sm["ner_tags"])] == \
        ["Agilent Technologies Inc.", "Apple"]
