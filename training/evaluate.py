"""Score predictions against gold with the one shared scorer, and run a model over a file."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from common.metrics import score
from common.spans import Span
from training.data import read_jsonl, write_jsonl


def align_docs(gold: list[dict], pred: list[dict]) -> list[dict]:
    """Predictions in gold order, matched by ``id`` when every gold id has a prediction, else
    by text (an annotation export ids headlines by a hash of the text, a labelled file may use
    its own ids)."""
    missing: list = []
    for key in ("id", "text"):
        if not (all(key in r for r in gold) and all(key in r for r in pred)):
            continue
        by = {r[key]: r for r in pred}
        missing = [r[key] for r in gold if r[key] not in by]
        if not missing:
            return [by[r[key]] for r in gold]
    raise ValueError(f"{len(missing) or len(gold)} gold documents have no prediction (by id or "
                     f"text), e.g. {(missing or [gold[0].get('text')])[0]!r}")


def evaluate_sets(gold_paths: list[str | Path], pred_path: str | Path, bootstrap: int = 1000,
                  against: str | Path | None = None) -> list[dict[str, Any]]:
    """Score one prediction file on each gold file and, with several, on their union (the
    project reports test, test2 and test+test2). With ``against`` (another prediction file of
    the same headlines), each row also gets the paired bootstrap of F1(pred) - F1(against)."""
    from common.metrics import paired_bootstrap

    preds = read_jsonl(pred_path)
    others = read_jsonl(against) if against else None
    sets = [(Path(g).name, read_jsonl(g)) for g in gold_paths]
    if len(sets) > 1:
        sets.append(("+".join(Path(g).stem for g in gold_paths), [r for _, rows in sets
                                                                 for r in rows]))
    out = []
    for name, gold in sets:
        pred = align_docs(gold, preds)
        gs = [g["spans"] for g in gold]
        sc = score(gs, [p["spans"] for p in pred], texts=[g["text"] for g in gold],
                   bootstrap=bootstrap)
        row: dict[str, Any] = {"gold": name, **sc.as_dict(), "score": sc}
        if others is not None:
            row["paired"] = paired_bootstrap(gs, [p["spans"] for p in pred],
                                             [o["spans"] for o in align_docs(gold, others)],
                                             bootstrap).as_dict()
        out.append(row)
    return out


def predict_file(tagger, in_path: str | Path, out_path: str | Path, batch_size: int = 32,
                 threshold: float | None = None, aliases: str | None = None,
                 on_progress: Any = None) -> dict[str, Any]:
    """``tickertag predict``: lines with ``text`` in, the same lines plus ``entities`` out
    (each with ``ticker`` and ``link_score``, and the line with ``tickers``, given an alias
    table)."""
    import json

    from training.linking import linked, load_cached

    rows = []
    with open(in_path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            row = json.loads(line)
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
