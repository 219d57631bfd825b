"""Which pool headlines the compact teachers are unsure of, most uncertain first.

Why a ranking and not just a set: the LLM budget of a round is a number of calls, so when it is
smaller than the contested set the calls must go where the teachers are least sure. Two signals,
both read off the teachers' own answers to the same headline:

- **disagreement**: the teachers' span sets differ. ``1 - agreement`` (the share of spans only
  some teachers predicted) ranks them; a headline where one teacher sees a company and the other
  none comes first.
- **a score inside a band** (optional): a span every teacher predicted, but with a score inside
  ``[low, high]``, is a coin flip that agreement hides. Its distance from the band's centre
  ranks it below every disagreement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

Key = tuple[int, int]


def span_keys(row: dict[str, Any] | None) -> frozenset[Key]:
    return frozenset((e["start"], e["end"]) for e in (row or {}).get("entities") or [])


@dataclass(frozen=True)
class Band:
    """Teacher scores that count as unsure (``None``: no band, disagreement only)."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.low < self.high <= 1.0:
            raise ValueError(f"score band [{self.low}, {self.high}] must satisfy "
                             "0 <= low < high <= 1")

    def closeness(self, score: float) -> float | None:
        """1 at the band's centre, 0 at its edges, None outside it."""
        if not self.low <= score <= self.high:
            return None
        half = (self.high - self.low) / 2
        return 1.0 - abs(score - (self.low + half)) / half


@dataclass
class Contested:
    """One headline to escalate: its pool row, each teacher's spans, and why."""

    row: dict[str, Any]
    teachers: list[list[dict[str, Any]]]
    uncertainty: float  # in (0, 2]: disagreements in (1, 2], band-only cases in (0, 1]
    reason: str  # "disagree" or "band"


def rank_contested(teacher_rows: Sequence[Sequence[dict[str, Any]]], band: Band | None = None
                   ) -> list[Contested]:
    """Every headline all teachers tagged whose answers disagree (or, with ``band``, hold a
    span scored inside it), most uncertain first; ties broken by id so a rerun picks the same."""
    by_id = [{r["id"]: r for r in rows} for rows in teacher_rows]
    if not by_id:
        return []
    out: list[Contested] = []
    for hid, first in by_id[0].items():
        copies = [m.get(hid) for m in by_id]
        if any(c is None for c in copies):
            continue  # a teacher dead-lettered it: no vote to be unsure about
        keys = [span_keys(c) for c in copies]
        union = frozenset().union(*keys)
        shared = frozenset.intersection(*keys) if keys else frozenset()
        ents = [list(c.get("entities") or []) for c in copies]
        if union != shared:
            agreement = len(shared) / len(union)
            out.append(Contested(first, ents, 1.0 + (1.0 - agreement), "disagree"))
            continue
        if band is not None:
            close = [band.closeness(float(e.get("score") if e.get("score") is not None else 1.0))
                     for c in ents for e in c]
            close = [c for c in close if c is not None]
            if close:
                out.append(Contested(first, ents, max(1e-6, max(close)), "band"))
    out.sort(key=lambda c: (-c.uncertainty, c.row["id"]))
    return out


def within_budget(ranked: list[Contested], budget: int | None) -> list[Contested]:
    """The first ``budget`` headlines of the ranking (all of them when ``budget`` is None)."""
    if budget is not None and budget < 0:
        raise ValueError(f"the LLM budget must be >= 0 calls, got {budget}")
    return ranked if budget is None else ranked[:budget]
