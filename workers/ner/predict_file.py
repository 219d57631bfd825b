"""``tickertag predict``: a model over a JSONL file, each entity linked to its ticker given an
alias table. The third way the tagging stage outputs entities, beside the ``ner`` queue
(``batch``) and HTTP (``service``); all three link through ``linking.linker.linked``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from common.jsonl import iter_numbered
from common.spans import Span
from linking.linker import linked, load_cached
from training.data import write_jsonl


def predict_file(tagger, in_path: str | Path, out_path: str | Path, batch_size: int = 32,
                 threshold: float | None = None, aliases: str | None = None,
                 on_progress: Any = None) -> dict[str, Any]:
    """``tickertag predict``: lines with ``text`` in, the same lines plus ``entities`` out
    (each with ``ticker`` and ``link_score``, and the line with ``tickers``, given an alias
    table)."""
    rows = []
    for n, row in iter_numbered(in_path):
        if not isinstance(row.get("text"), str):
            raise ValueError(f"{in_path}:{n}: field 'text' is missing or not a string")
        rows.append(row)
    table = load_cached(str(aliases)) if aliases else None  # loaded before the clock starts
    t0 = time.perf_counter()
    spans: list[list[Span]] = []
    for i in range(0, len(rows), 256):
        spans += tagger.predict([r["text"] for r in rows[i:i + 256]], threshold, batch_size)
        if on_progress:
            on_progress(len(spans), len(rows))
    out = []
    for r, s in zip(rows, spans, strict=True):
        ents, tickers = linked(s, r["text"], table)
        row = {**{k: v for k, v in r.items() if k != "entities"}, "entities": ents}
        if tickers is not None:
            row["tickers"] = tickers
        out.append(row)
    secs = time.perf_counter() - t0
    write_jsonl(out_path, out)
    return {"headlines": len(rows), "seconds": secs,
            "headlines_per_s": len(rows) / secs if secs else None}
