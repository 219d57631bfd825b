"""Write a curated sample in every form downstream stages read: JSONL with character spans
(review and training), a ``datasets.DatasetDict`` on disk, and the trainer forms (GLiNER
``tokenized_text``/``ner``, SpanMarker ``tokens``/``ner_tags``) from ``common.tokens``."""

from __future__ import annotations

import json
from pathlib import Path

from common.spans import Span
from common.tokens import to_gliner, to_spanmarker


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def export_splits(splits: dict[str, list[dict]], out_dir: Path) -> dict[str, int]:
    """Write ``out_dir/{split}.jsonl``, ``out_dir/hf`` and ``out_dir/{gliner,spanmarker}/``."""
    from datasets import Dataset, DatasetDict

    counts = {}
    dd = {}
    for name, rows in splits.items():
        rows = sorted(rows, key=lambda r: (r.get("date") or "", r["id"]))
        _jsonl(out_dir / f"{name}.jsonl", rows)
        spans = [[Span(**e) for e in r["entities"]] for r in rows]
        _jsonl(out_dir / "gliner" / f"{name}.jsonl",
               [to_gliner(r["text"], s) for r, s in zip(rows, spans, strict=True)])
        _jsonl(out_dir / "spanmarker" / f"{name}.jsonl",
               [to_spanmarker(r["text"], s) for r, s in zip(rows, spans, strict=True)])
        dd[name] = Dataset.from_list([
            {"id": r["id"], "text": r["text"], "date": r.get("date") or "",
             "stock_symbol": r.get("stock_symbol") or "",
             "entities": [{k: e[k] for k in ("start", "end", "label", "text")}
                          for e in r["entities"]],
             "clusters": r.get("clusters", [])} for r in rows])
        counts[name] = len(rows)
    DatasetDict(dd).save_to_disk(str(out_dir / "hf"))
    return counts
