"""Score predictions against gold with the one shared scorer (``tickertag predict``, a model
over a file, is ``workers.ner.predict_file``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common.metrics import score
from training.data import read_jsonl


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

