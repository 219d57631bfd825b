"""Labelled headlines for training and evaluation: JSONL with character spans.

Lines look like ``{"id", "text", "entities": [{"start", "end", "label", "text"}], ...}`` — the
format of ``data/labeled/*.jsonl``, of curated exports and of reviewed Argilla pulls, so
training reads any of them. Conversions to trainer formats live in ``common.tokens``.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, TypeVar

from common import jsonl as common_jsonl
from common.spans import LABEL, Span, check_spans

T = TypeVar("T")


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read labelled (or unlabelled) lines; spans are validated against their text."""
    rows = []
    for n, row in common_jsonl.iter_numbered(path):
        if not isinstance(row.get("text"), str):
            raise ValueError(f"{path}:{n}: field 'text' is missing or not a string")
        try:
            row["spans"] = check_spans(row["text"], row.get("entities") or [])
        except ValueError as e:
            raise ValueError(f"{path}:{n}: field 'entities': {e}") from None
        rows.append(row)
    return rows


def write_jsonl(path: str | Path, rows: list[dict[str, Any]]) -> None:
    """Rows without their parsed ``spans`` (the ``entities`` they came from stay)."""
    common_jsonl.write_jsonl(path, ({k: v for k, v in r.items() if k != "spans"} for r in rows))


def valid_paths(valid: str | list[str] | None) -> list[str]:
    """A config's ``valid`` as a list of files (it may name one or several)."""
    if not valid:
        return []
    return [valid] if isinstance(valid, str) else list(valid)


def read_valid_rows(valid: str | list[str] | None) -> list[dict[str, Any]]:
    """Validation rows of one or several files, each headline once (first file wins)."""
    return read_training_rows(valid_paths(valid))


def read_training_rows(paths: list[str], valid_path: str | list[str] | None = None
                       ) -> list[dict[str, Any]]:
    """Rows of several labelled files, each headline once: the first file that has a text wins.

    This is what lets ``--train gold.jsonl --train llm.jsonl`` add only the LLM-labelled
    headlines the reviewed file lacks (the LLM file is a superset with weaker labels), and it
    drops any headline that also appears in the validation file, so checkpoint selection never
    sees a training headline.
    """
    seen: set[str] = set()
    for vp in valid_paths(valid_path):
        seen.update(norm_text(r["text"]) for r in read_jsonl(vp))
    rows = []
    for p in paths:
        for r in read_jsonl(p):
            k = norm_text(r["text"])
            if k not in seen:
                seen.add(k)
                rows.append(r)
    return rows


def norm_text(text: str) -> str:
    """The key two headlines share when they are the same title (case and spacing ignored):
    used to keep valid and test titles out of training and silver sets."""
    return " ".join(text.lower().split())


def subset(rows: list[T], n: int | None, seed: int = 0) -> list[T]:
    """A seeded random subset (learning curves, CI-sized runs)."""
    if n is None or n >= len(rows):
        return list(rows)
    return random.Random(seed).sample(rows, n)


def recipe_rows(cfg: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A recipe's training and valid rows, as every trainer and the spaCy project export read
    them: labelled files first, valid headlines out of training, seeded subsets."""
    train_rows = subset(read_training_rows(cfg.train, cfg.valid), cfg.max_train, cfg.seed)
    return train_rows, recipe_valid_rows(cfg)


def recipe_valid_rows(cfg: Any) -> list[dict[str, Any]]:
    """A recipe's valid rows alone (its seeded ``max_valid`` subset): what selects a model and
    what ``import-spacy`` scores a pipeline spaCy trained on."""
    return subset(read_valid_rows(cfg.valid), cfg.max_valid, cfg.seed) if cfg.valid else []


def spans_of(row: dict) -> list[Span]:
    return row.get("spans") or [Span(**e) for e in row.get("entities", [])]


def entity_dicts(spans: list[Span]) -> list[dict[str, Any]]:
    """Spans as the output records of ``tickertag predict``."""
    return [{"start": s.start, "end": s.end, "label": LABEL, "text": s.text,
             "score": None if s.score is None else round(float(s.score), 4)} for s in spans]
