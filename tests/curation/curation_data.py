"""Real names and headlines for the curation tests (the labeled files in data/labeled), and a
result store filled the way the annotation stage fills one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from common.paths import LABELED_DIR
from common.store import ResultStore


def labeled_rows(kind: str = "*") -> list[dict[str, Any]]:
    """Rows of the span-labelled files (gold and LLM; not the linking set, which has none)."""
    rows = []
    kinds = ("gold", "llm") if kind == "*" else (kind,)
    for p in sorted(q for k in kinds for q in LABELED_DIR.glob(f"benzinga_{k}_*.jsonl")):
        rows += [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
    return rows


def real_names() -> list[str]:
    """Every entity text of every labeled file (gold and LLM), with repeats."""
    return [e["text"] for r in labeled_rows() for e in r["entities"]]


def as_results(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Labeled rows in the shape the annotation stage stores (see common/store.py)."""
    return [{"key": f"{r['id']}:m:p", "id": r["id"], "text": r["text"], "date": r["date"],
             "stock_symbol": r["stock_symbol"], "entities": r["entities"],
             "companies": [e["text"] for e in r["entities"]],
             "normalized": [e["text"] for e in r["entities"]], "hallucinated": [],
             "valid": True} for r in rows]


def fill_store(root: Path, run_id: str, rows: list[dict[str, Any]], per_batch: int = 500
               ) -> ResultStore:
    store = ResultStore(str(root), run_id)
    for i in range(0, len(rows), per_batch):
        store.write_results(f"b{i // per_batch:04d}", rows[i:i + per_batch])
    return store
