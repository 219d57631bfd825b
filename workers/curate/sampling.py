"""Choose what people review: a seeded sample per company cluster, then a split by date.

As the case study: a fraction (5%) of the headlines of every company cluster, at least one
each, so rare companies are represented, plus the same fraction of headlines with no company;
then train / valid / test by publication year, so evaluation is on later news than training.
Only headlines that fall in a split are candidates, so "at least one per cluster" survives the
split.

Split ranges are whole years (FNSPID's 2010-2016 / 2017-2018 / 2019-2020 by default) or date
prefixes ("2024-07", "2024-07-15"), inclusive. A run whose headlines leave a default split empty
(a 2024-25 stream) gets chronological ranges derived from its own dates instead
(``resolve_splits``): an empty valid or test split would silently train and score on nothing.
A run that leaves every split empty is refused (``empty_curation``), its cause named.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import pairwise

from pydantic import BaseModel, Field, model_validator

Bound = int | str  # a year (2016) or a date prefix ("2024-07", "2024-07-15")
Splits = dict[str, tuple[Bound, Bound]]
SPLIT_YEARS: Splits = {"train": (2010, 2016), "valid": (2017, 2018), "test": (2019, 2020)}
# Shares of a run's headlines in train / valid / test when the ranges come from its own dates.
DERIVED_SHARES = (0.70, 0.15, 0.15)
Head = tuple[str | None, bool]  # a valid headline's day, and whether it names a company
SPLIT_HINT = "pass --split NAME=FROM..TO (repeatable) or set TICKERTAG_CURATE_SPLITS"


def _lo(b: Bound) -> str:
    """The first day a bound covers, as YYYY-MM-DD (ISO dates compare as strings)."""
    s = str(b)
    return s + "-01-01"[len(s) - 4:] if len(s) < 10 else s[:10]


def _hi(b: Bound) -> str:
    """The last day a bound covers ("-31" sorts after every real day of any month)."""
    s = str(b)
    return s + "-12-31"[len(s) - 4:] if len(s) < 10 else s[:10]


def day_of(date: str | None) -> str | None:
    """A headline's date as YYYY-MM-DD (or a shorter valid prefix), None when it has none."""
    if not date or len(date) < 4 or not date[:4].isdigit():
        return None
    return date[:10]


class SampleOptions(BaseModel):
    """Everything that decides a curated sample; the same options on the same run give the
    same sample (the task's JSON ``options`` dict is validated into this)."""

    threshold: float = Field(85, ge=0, le=100)
    company_fraction: float = Field(0.05, gt=0, le=1)
    empty_fraction: float = Field(0.05, ge=0, le=1)
    seed: int = 0
    # None: TICKERTAG_CURATE_SPLITS, else FNSPID's years, else derived from the run's dates.
    splits: Splits | None = None
    join_normalized: bool = False

    @model_validator(mode="after")
    def _disjoint_years(self) -> SampleOptions:
        check_splits(self.splits)
        return self


def check_splits(splits: Splits | None) -> None:
    """Overlapping ranges would put one headline in two splits: test leaking into train."""
    if not splits:
        return
    spans = sorted((_lo(lo), _hi(hi)) for lo, hi in splits.values())
    if any(lo > hi for lo, hi in spans) or any(lo2 <= hi for (_, hi), (lo2, _) in pairwise(spans)):
        raise ValueError(f"split ranges must be disjoint FIRST <= LAST ranges: {splits}")


def derive_splits(day_counts: Mapping[str, int], shares: tuple[float, float, float] = DERIVED_SHARES
                  ) -> Splits:
    """Chronological train / valid / test ranges holding about ``shares`` of the headlines,
    cut at whole months (whole days when the run spans fewer than three months). Later news is
    always in a later split, as with the year ranges."""
    days = {d: n for d, n in day_counts.items() if d}
    if not days:
        return {}
    for width in (7, 10):  # months, then days
        units: Counter[str] = Counter()
        for d, n in days.items():
            units[d[:width]] += n
        if len(units) >= 3:
            break
    keys = sorted(units)
    if len(keys) < 3:  # too few distinct dates to hold anything out
        return {"train": (keys[0], keys[-1])}
    total, cum, ends = sum(units.values()), 0, []
    for k in keys:
        cum += units[k]
        ends.append(cum)
    def last_within(share: float, lo: int, hi: int) -> int:
        fits = [i for i in range(lo, hi + 1) if ends[i] <= share * total]
        return fits[-1] if fits else lo
    i = last_within(shares[0], 0, len(keys) - 3)
    j = last_within(shares[0] + shares[1], i + 1, len(keys) - 2)
    return {"train": (keys[0], keys[i]), "valid": (keys[i + 1], keys[j]),
            "test": (keys[j + 1], keys[-1])}


def resolve_splits(explicit: Splits | None, configured: Splits | None,
                   day_counts: Mapping[str, int]) -> tuple[Splits, str]:
    """The ranges a curation uses and where they came from: the options, the settings
    (``TICKERTAG_CURATE_SPLITS``), FNSPID's years when each holds a headline of this run, else
    ranges derived from the run's own dates."""
    if explicit:
        return explicit, "options"
    if configured:
        try:
            check_splits(configured)
        except ValueError as e:
            raise ValueError(f"TICKERTAG_CURATE_SPLITS: {e}") from None
        return configured, "settings (TICKERTAG_CURATE_SPLITS)"
    filled = {split_of(d) for d, n in day_counts.items() if n}
    if all(k in filled for k in SPLIT_YEARS):
        return dict(SPLIT_YEARS), "default years"
    return derive_splits(day_counts), "derived from the run's dates (the default years left a split empty)"


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


def split_of(date: str | None, splits: Splits = SPLIT_YEARS) -> str | None:
    """The split a headline's date falls in (inclusive ranges), or None outside all of them."""
    day = day_of(date)
    if day is None:
        return None
    for name, (lo, hi) in splits.items():
        if _lo(lo) <= _lo(day) and _hi(day) <= _hi(hi):
            return name
    return None


def split_rows(rows: Iterable[dict], splits: Splits = SPLIT_YEARS
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


_DATE = re.compile(r"\d{4}(-\d{2}){0,2}")


def parse_split(spec: str) -> tuple[str, tuple[Bound, Bound]]:
    """``"train=2010-2016"``, ``"test=2019"`` or ``"valid=2024-10..2024-12"`` -> the split's name
    and its inclusive range, for the CLI."""
    name, _, rng = spec.partition("=")
    if ".." in rng:
        lo, _, hi = rng.partition("..")
        if name and _DATE.fullmatch(lo.strip()) and _DATE.fullmatch(hi.strip()):
            return name.strip(), (lo.strip(), hi.strip())
    else:
        lo, _, hi = rng.partition("-")
        if name and lo.strip().isdigit() and (not hi or hi.strip().isdigit()):
            return name.strip(), (int(lo), int(hi) if hi else int(lo))
    raise ValueError(f"split {spec!r} is not NAME=YEAR[-YEAR] or NAME=DATE..DATE "
                     "(DATE: YYYY, YYYY-MM or YYYY-MM-DD)")


class EmptyCuration(ValueError):
    """A curation that would write empty splits, and why (``cause``: ``no_results``,
    ``all_invalid``, ``no_dates``, ``outside_splits``, ``no_companies``, ``invalid_spans``).

    A ValueError, so the CLI exits 1 with the message on one line. ``cause`` travels in
    ``args`` so that Celery's JSON result backend rebuilds the same exception.
    """

    def __init__(self, message: str, cause: str = "empty") -> None:
        super().__init__(message, cause)
        self.message, self.cause = message, cause

    def __str__(self) -> str:
        return self.message


def _ranges(splits: Splits) -> str:
    """Split ranges as the CLI writes them (``train=2010..2016``), for error messages."""
    return " ".join(f"{k}={lo}..{hi}" for k, (lo, hi) in splits.items())


def _all_invalid(run_id: str, n_results: int, reasons: Counter[str]) -> EmptyCuration:
    reason, n = reasons.most_common(1)[0] if reasons else ("none recorded", 0)
    return EmptyCuration(
        f"all {n_results} answers of run {run_id} are invalid, so there is nothing to curate "
        f"(most common reason: {reason}, {n} answers): fix the LLM endpoint or prompt and "
        "annotate the run again", "all_invalid")


@dataclass(slots=True)
class Tally:
    """One pass of counts over a run's valid headlines: enough to say why nothing would be
    curated, without a list the size of the run."""

    valid: int = 0
    dated: int = 0
    first: str = ""  # the earliest and latest days
    last: str = ""
    named: int = 0  # headlines naming a company
    named_undated: int = 0
    in_splits: int = 0
    named_in_splits: int = 0

    def add(self, day: str | None, named: bool, in_split: bool) -> None:
        self.valid += 1
        self.named += named
        self.named_undated += named and not day
        if day:
            self.dated += 1
            self.first = min(self.first or day, day)
            self.last = max(self.last, day)
        self.in_splits += in_split
        self.named_in_splits += named and in_split


def _no_companies(run_id: str, t: Tally, splits: Splits) -> EmptyCuration:
    if not t.named:
        why = ("no valid answer names a company (every `companies` list is empty): check the "
               "LLM's answers in the run's results")
    else:
        why = (f"the {t.named} that name one are outside the splits {_ranges(splits)}"
               f" ({t.named_undated} of them undated): {SPLIT_HINT} to take them in")
    return EmptyCuration(f"none of the {t.in_splits} headlines of run {run_id} in the splits "
                         f"names a company, so there is nothing to train a tagger on; {why}",
                         "no_companies")


def empty_curation(run_id: str, n_results: int, invalid: Counter[str], heads: Iterable[Head],
                   splits: Splits, source: str) -> EmptyCuration | None:
    """Why a run would curate into empty splits (None when it would not), the first cause
    that applies, decided from the first pass over its results (``heads``: each valid
    headline's day and whether it names a company) so that nothing is written for a dead run.
    ``invalid``: the invalid answers' reasons, counted."""
    if n_results == 0:
        return EmptyCuration(f"run {run_id} has no results, so there is nothing to curate: "
                             "check the run id, or annotate the run first", "no_results")
    t = Tally()
    for day, named in heads:
        t.add(day, named, split_of(day, splits) is not None)
    if not t.valid:
        return _all_invalid(run_id, n_results, invalid)
    if not t.dated:
        return EmptyCuration(
            f"none of the {t.valid} valid headlines of run {run_id} has a date, and the "
            "splits are date ranges (--split NAME=FROM..TO or TICKERTAG_CURATE_SPLITS) that "
            "cannot hold an undated headline: annotate the run again from a source with a "
            "date column", "no_dates")
    if not t.in_splits:
        return EmptyCuration(
            f"none of the {t.dated} dated headlines of run {run_id} (dated {t.first}..{t.last})"
            f" falls in the splits {_ranges(splits) or '(none)'} ({source}): {SPLIT_HINT} with "
            f"ranges within {t.first}..{t.last}", "outside_splits")
    if not t.named_in_splits:
        return _no_companies(run_id, t, splits)
    return None
