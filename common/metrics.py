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


def _doc_counts(gold: Sequence[Iterable], pred: Sequence[Iterable]) -> list[tuple[int, int, int]]:
    out = []
    for g, p in zip(gold, pred, strict=True):
        gk, pk = span_keys(g), span_keys(p)
        out.append((len(gk & pk), len(pk - gk), len(gk - pk)))
    return out


@dataclass
class PairedDiff:
    """F1(a) - F1(b) on the same documents, with a paired bootstrap 95% CI: the documents are
    resampled together for both systems, so headline difficulty cancels out. A gain whose CI
    includes 0 is not a gain."""

    f1_a: float
    f1_b: float
    delta: float
    ci95: tuple[float, float]
    p_not_better: float  # share of resamples where a did not beat b
    n_docs: int

    def as_dict(self) -> dict:
        return {"f1_a": self.f1_a, "f1_b": self.f1_b, "delta": self.delta,
                "delta_ci95": list(self.ci95), "p_not_better": self.p_not_better,
                "n_docs": self.n_docs}


def paired_bootstrap(gold: Sequence[Iterable], pred_a: Sequence[Iterable],
                     pred_b: Sequence[Iterable], n: int = 1000, seed: int = 0) -> PairedDiff:
    a, b = _doc_counts(gold, pred_a), _doc_counts(gold, pred_b)
    if not a:
        raise ValueError("no documents to compare")

    def f1(counts: list[tuple[int, int, int]], idx: Iterable[int]) -> float:
        tp = fp = fn = 0
        for i in idx:
            tp, fp, fn = tp + counts[i][0], fp + counts[i][1], fn + counts[i][2]
        return _prf(tp, fp, fn)[2]

    rng = random.Random(seed)
    docs = range(len(a))
    fa, fb = f1(a, docs), f1(b, docs)
    deltas = []
    for _ in range(n):
        idx = [rng.randrange(len(a)) for _ in docs]
        deltas.append(f1(a, idx) - f1(b, idx))
    deltas.sort()
    ci = (deltas[int(0.025 * (n - 1))], deltas[int(0.975 * (n - 1))])
    return PairedDiff(fa, fb, fa - fb, ci, sum(d <= 0 for d in deltas) / n, len(a))
