"""The one scorer: entity-level micro precision / recall / F1 on exact character spans.

Every number tickertag reports (evaluate, training's valid F1, the report) comes from here, so
systems are always compared the same way. Spans compare on (start, end, label), labels
case-insensitively (GLiNER predicts "company", the data says "Company").
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

SpanKey = tuple[int, int, str]


def span_keys(entities: Iterable[Mapping | object]) -> set[SpanKey]:
    keys = set()
    for e in entities:
        get = e.get if isinstance(e, Mapping) else lambda k, e=e: getattr(e, k)
        keys.add((int(get("start")), int(get("end")), str(get("label")).lower()))
    return keys


@dataclass
class Score:
    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float
    ci95: tuple[float, float] | None = None
    n_docs: int = 0
    errors: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "precision": self.precision, "recall": self.recall, "f1": self.f1,
            "tp": self.tp, "fp": self.fp, "fn": self.fn, "n_docs": self.n_docs,
            "f1_ci95": list(self.ci95) if self.ci95 else None,
        }


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 1.0 if fn == 0 else 0.0
    r = tp / (tp + fn) if tp + fn else 1.0 if fp == 0 else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def score(
    gold: Sequence[Iterable], pred: Sequence[Iterable], texts: Sequence[str] | None = None,
    bootstrap: int = 0, seed: int = 0,
) -> Score:
    """Micro P/R/F1 over aligned documents; optional bootstrap 95% CI of F1 over documents."""
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold documents but {len(pred)} predicted")
    per_doc = []
    errors = []
    for i, (g, p) in enumerate(zip(gold, pred, strict=True)):
        gk, pk = span_keys(g), span_keys(p)
        per_doc.append((len(gk & pk), len(pk - gk), len(gk - pk)))
        if texts is not None and gk != pk:
            t = texts[i]
            errors.append({
                "doc": i, "text": t,
                "false_positives": [t[s:e] for s, e, _ in sorted(pk - gk)],
                "false_negatives": [t[s:e] for s, e, _ in sorted(gk - pk)],
            })
    tp, fp, fn = (sum(x[k] for x in per_doc) for k in range(3))
    p, r, f = _prf(tp, fp, fn)
    ci = None
    if bootstrap and per_doc:
        rng = random.Random(seed)
        n = len(per_doc)
        fs = []
        for _ in range(bootstrap):
            sample = [per_doc[rng.randrange(n)] for _ in range(n)]
            fs.append(_prf(*(sum(x[k] for x in sample) for k in range(3)))[2])
        fs.sort()
        ci = (fs[int(0.025 * (len(fs) - 1))], fs[int(0.975 * (len(fs) - 1))])
    return Score(tp, fp, fn, p, r, f, ci, len(per_doc), errors)
