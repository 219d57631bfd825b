"""Curated-format split files for the review tests, made from the bundled LLM labels."""

from __future__ import annotations

import json
from pathlib import Path

from common.paths import LABELED_DIR


def make_curated(out: Path, per_split: int = 12) -> dict[str, list[dict]]:
    """Curated-format split files from the bundled LLM labels, plus the optional fields
    curation adds (model, prompt_version, cluster, valid, hallucinated) on a few rows."""
    splits: dict[str, list[dict]] = {}
    out.mkdir(parents=True, exist_ok=True)
    for split in ("train", "valid", "test"):
        rows = []
        with open(LABELED_DIR / f"benzinga_llm_{split}.jsonl", encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                rows.append({**r, "model": "llama-3.1-70b", "prompt_version": "companies-v1",
                             "valid": True, "hallucinated": []})
                if len(rows) == per_split:
                    break
        rows[-1]["hallucinated"] = ["Dun & Bradstreet"]
        rows[-2]["valid"] = False
        rows[-3]["cluster"] = "c00042"
        splits[split] = rows
        with open(out / f"{split}.jsonl", "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
    return splits
