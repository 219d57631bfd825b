"""Choose what people review: a seeded sample per company cluster, then a split by year.

As the case study: a fraction (5%) of the headlines of every company cluster, at least one
each, so rare companies are represented, plus the same fraction of headlines with no company;
then train / valid / test by publication year, so evaluation is on later news than training.
Only headlines that fall in a split are candidates, so "at least one per cluster" survives the
split.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Iterable
from itertools import pairwise

from pydantic import BaseModel, Field, model_validator

SPLIT_YEARS = {"train": (2010, 2016), "valid": (2017, 2018), "test": (2019, 2020)}


class SampleOptions(BaseModel):
    """Everything that decides a curated sample; the same options on the same run give the
    same sample (the task's JSON ``options`` dict is validated into this)."""

    threshold: float = Field(85, ge=0, le=100)
    company_fraction: float = Field(0.05, gt=0, le=1)
    empty_fraction: float = Field(0.05, ge=0, le=1)
    seed: int = 0
    splits: dict[str, tuple[int, int]] = Field(default_factory=lambda: dict(SPLIT_YEARS))
    join_normalized: bool = False

    @model_validator(mode="after")
    def _disjoint_years(self) -> SampleOptions:
        # Overlapping ranges would put one headline in two splits: test leaking into train.
        spans = sorted(self.splits.values())
        if any(lo > hi for lo, hi in spans) or \
                any(lo2 <= hi for (_, hi), (lo2, _) in pairwise(spans)):
            raise ValueError(f"split years must be disjoint FIRST <= LAST ranges: {self.splits}")
        return self


def _take(ids: Iterable[str], fraction: float, seed: int, group: str) -> list[str]:
    """``ceil(fraction * n)`` (>= 1) ids of a group, seeded by (seed, group) alone: adding a
    cluster or changing another fraction never reshuffles this group's choice."""
    pool = sorted(ids)
    k = min(len(pool), max(1, math.ceil(fraction * len(pool))))
    return random.Random(f"{seed}/{group}").sample(pool, k) if pool else []


def sample_headlines(clusters_of: dict[str, set[str]], empty_ids: Iterable[str],
                     company_fraction: float, empty_fraction: float, seed: int) -> set[str]:
    """Headline ids: ``ceil(fraction * n)`` (>= 1) per cluster, plus a share of empty ones.

    ``clusters_of`` maps cluster id -> headline ids that mention it. Sorting before sampling
    makes the result depend on the seed and the data only, never on input order.
    """
    chosen: set[str] = set()
    for cid in sorted(clusters_of):
        chosen.update(_take(clusters_of[cid], company_fraction, seed, f"cluster:{cid}"))
    if empty_fraction > 0:
        chosen.update(_take(set(empty_ids), empty_fraction, seed, "no-company"))
    return chosen


def split_of(date: str | None, splits: dict[str, tuple[int, int]] = SPLIT_YEARS) -> str | None:
    """The split a headline's year falls in (inclusive ranges), or None outside all of them."""
    if not date or len(date) < 4 or not date[:4].isdigit():
        return None
    year = int(date[:4])
    for name, (lo, hi) in splits.items():
        if lo <= year <= hi:
            return name
    return None


def split_rows(rows: Iterable[dict], splits: dict[str, tuple[int, int]] = SPLIT_YEARS
               ) -> tuple[dict[str, list[dict]], int]:
    """Rows by split, and how many fell outside every split."""
    out: dict[str, list[dict]] = defaultdict(list)
    outside = 0
    for r in rows:
        s = split_of(r.get("date"), splits)
        if s is None:
            outside += 1
        else:
            out[s].append(r)
    return {k: out.get(k, []) for k in splits}, outside


def parse_split(spec: str) -> tuple[str, tuple[int, int]]:
    """``"train=2010-2016"`` (or ``"test=2019"``) -> ``("train", (2010, 2016))``, for the CLI."""
    name, _, years = spec.partition("=")
    lo, _, hi = years.partition("-")
    if not name or not lo.strip().isdigit() or (hi and not hi.strip().isdigit()):
        raise ValueError(f"split {spec!r} is not NAME=YEAR[-YEAR]")
    first = int(lo)
    return name.strip(), (first, int(hi) if hi else first)
