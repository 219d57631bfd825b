"""The model a serving benchmark measures when none is named: the spaCy baseline built in a
temporary directory (it needs no training and no download), so each benchmark runs on a fresh
machine. One place for it: the memory and mixed-load benchmarks both default to it."""

from __future__ import annotations

from pathlib import Path


def model_or_baseline(model: str | None, tmp: str | Path) -> str:
    """``model`` resolved, or the spaCy baseline built under ``tmp`` when ``model`` is None."""
    if model is None:
        from training.baselines import build_spacy

        model = str(Path(tmp) / "spacy")
        build_spacy(model)
    return str(Path(model).resolve())
