"""Choose what people review: a seeded sample per company cluster, then a split by year.

As the case study: a fraction (5%) of the headlines of every company cluster, at least one
each, so rare companies are represented, plus the same fraction of headlines with no company;
then train / valid / test by publication year, so evaluation is on later news than training.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Iterable

from pydantic import BaseModel

SPLIT_YEARS = {"train": (2010, 2016), "valid": (2017, 2018), "test": (2019, 2020)}


class SampleOptions(BaseModel):
    threshold: float = 85
    company_fraction: float = 0.05
    empty_fraction: float = 0.05
    seed: int = 0
    splits: dict[str, tuple[int, int]] = SPLIT_YEARS


def sample_headlines(clusters_of: dict[str, set[str]], empty_ids: Iterable[str],
                     company_fraction: float, empty_fraction: float, seed: int) -> set[str]:
    """Headline ids: ``ceil(fraction * n)`` (>= 1) per cluster, plus a share of empty ones.

    ``clusters_of`` maps cluster id -> headline ids that mention it. Sorting before sampling
    makes the result depend on the seed and the data only, never on input order.
    """
    rng = random.Random(seed)
    chosen: set[str] = set()
    for cid in sorted(clusters_of):
        ids = sorted(clusters_of[cid])
        k = max(1, math.ceil(company_fraction * len(ids)))
        chosen.update(rng.sample(ids, min(k, len(ids))))
    empty = sorted(set(empty_ids))
    if empty and empty_fraction > 0:
        chosen.update(rng.sample(empty, max(1, math.ceil(empty_fraction * len(empty)))))
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
