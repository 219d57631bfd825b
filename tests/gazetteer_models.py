"""Small real models for tests that need a model to change: a gazetteer (``tickertag baseline
gazetteer``) is built in milliseconds and tags exactly the names it was trained on, so a test
can tell which of two models in the same directory answered."""

from __future__ import annotations

from pathlib import Path

from training.baselines import build_gazetteer
from training.data import write_jsonl
from training.manifest import FINGERPRINT


def gazetteer(out: Path, names: list[str]) -> str:
    """Build a gazetteer in ``out`` from one headline per name; return its fingerprint."""
    train = out.parent / f"{out.name}-train.jsonl"
    write_jsonl(train, [{"text": f"{n} shares rise after earnings",
                         "entities": [{"start": 0, "end": len(n), "label": "Company", "text": n}]}
                        for n in names])
    return build_gazetteer([str(train)], str(out))[FINGERPRINT]
