"""Sampling fractions and determinism; split boundaries and their configuration."""

from __future__ import annotations

from itertools import pairwise

import pytest
from pydantic import ValidationError

from workers.curate.sampling import (
    SPLIT_YEARS,
    SampleOptions,
    parse_split,
    resolve_splits,
    sample_headlines,
    split_of,
    split_rows,
)

CLUSTERS = {f"c{i}": {f"h{i}-{j}" for j in range(n)} for i, n in enumerate([1, 10, 40, 200])}
EMPTY = [f"e{j}" for j in range(100)]


def test_fractions_at_least_one_per_cluster():
    a = sample_headlines(CLUSTERS, EMPTY, 0.05, 0.05, seed=3)
    assert {c: len(a & ids) for c, ids in CLUSTERS.items()} == \
        {"c0": 1, "c1": 1, "c2": 2, "c3": 10}
    assert len([x for x in a if x.startswith("e")]) == 5


def test_fractions_are_configurable():
    a = sample_headlines(CLUSTERS, EMPTY, 0.5, 0.0, seed=0)
    assert {c: len(a & ids) for c, ids in CLUSTERS.items()} == \
        {"c0": 1, "c1": 5, "c2": 20, "c3": 100}
    assert not any(x.startswith("e") for x in a)


def test_seeded_and_independent_of_input_order():
    a = sample_headlines(CLUSTERS, EMPTY, 0.05, 0.05, seed=3)
    b = sample_headlines(dict(reversed(list(CLUSTERS.items()))), list(reversed(EMPTY)), 0.05,
                         0.05, seed=3)
    assert a == b
    assert a != sample_headlines(CLUSTERS, EMPTY, 0.05, 0.05, seed=4)


def test_a_cluster_choice_does_not_depend_on_other_clusters():
    a = sample_headlines(CLUSTERS, EMPTY, 0.05, 0.05, seed=3)
    more = {**CLUSTERS, "c9": {f"x{j}" for j in range(50)}}
    b = sample_headlines(more, [], 0.05, 0.05, seed=3)
    assert a & CLUSTERS["c3"] == b & CLUSTERS["c3"]


@pytest.mark.parametrize("date,split", [
    ("2009-12-31", None), ("2010-01-01", "train"), ("2016-12-31 23:59:00", "train"),
    ("2017-01-01", "valid"), ("2018-12-31", "valid"), ("2019-01-01", "test"),
    ("2020-12-31", "test"), ("2021-01-01", None), (None, None), ("n/a", None), ("", None),
])
def test_split_boundaries(date, split):
    assert split_of(date) == split


def test_split_rows_counts_the_rows_outside():
    splits, outside = split_rows([{"date": "2015-05-05"}, {"date": "2020-01-01"},
                                  {"date": "2009-01-01"}])
    assert [len(splits[k]) for k in ("train", "valid", "test")] == [1, 0, 1] and outside == 1


def test_splits_are_configurable_and_must_not_overlap():
    opts = SampleOptions(splits=dict(parse_split(s) for s in ("train=2010-2017", "test=2018")))
    assert split_of("2017-06-01", opts.splits) == "train"
    assert split_of("2018-06-01", opts.splits) == "test"
    assert split_of("2019-06-01", opts.splits) is None
    with pytest.raises(ValidationError):
        SampleOptions(splits={"train": (2010, 2017), "test": (2017, 2020)})
    with pytest.raises(ValidationError):
        SampleOptions(splits={"train": (2016, 2010)})
    with pytest.raises(ValueError):
        parse_split("train:2010")


def test_date_prefix_ranges_and_their_cli_form():
    splits = dict(parse_split(s) for s in ("train=2024", "valid=2025-01..2025-03",
                                           "test=2025-04-01..2025-06-30"))
    assert splits["valid"] == ("2025-01", "2025-03")
    SampleOptions(splits=splits)  # disjoint
    assert split_of("2024-12-31", splits) == "train"
    assert split_of("2025-03-31 20:00:00", splits) == "valid"
    assert split_of("2025-04-01", splits) == "test" and split_of("2025-07-01", splits) is None
    with pytest.raises(ValidationError):  # a year range overlapping a month range
        SampleOptions(splits={"train": (2024, 2025), "test": ("2025-06", "2025-12")})
    with pytest.raises(ValueError):
        parse_split("valid=2025-01..soon")


def _days(first: str, n: int) -> dict[str, int]:
    import datetime as dt

    d0 = dt.date.fromisoformat(first)
    return {(d0 + dt.timedelta(days=i)).isoformat(): 10 for i in range(n)}


def test_a_2024_25_stream_gets_three_chronological_splits_from_its_own_dates():
    days = _days("2024-03-01", 400)  # March 2024 to April 2025, 10 headlines a day
    ranges, source = resolve_splits(None, None, days)
    assert source.startswith("derived")
    counts = {k: sum(n for d, n in days.items() if split_of(d, ranges) == k) for k in ranges}
    assert all(counts.values()), counts  # the default years would leave all three empty
    assert sum(counts.values()) == sum(days.values())  # every headline in one split
    assert 0.6 < counts["train"] / 4000 < 0.8 and counts["test"] > 0
    order = [ranges[k] for k in ("train", "valid", "test")]
    assert all(hi < lo for (_, hi), (lo, _) in pairwise(order))  # later news, later split


def test_a_short_stream_is_split_by_day_and_a_one_day_stream_all_trains():
    ranges, _ = resolve_splits(None, None, _days("2025-06-01", 20))  # one month: cut at days
    assert set(ranges) == {"train", "valid", "test"} and len(ranges["test"][0]) == 10
    assert resolve_splits(None, None, {"2025-06-01": 50})[0] == {"train": ("2025-06-01", "2025-06-01")}


def test_which_ranges_win():
    fnspid = {"2012-01-01": 5, "2018-01-01": 5, "2020-01-01": 5}
    assert resolve_splits(None, None, fnspid) == (SPLIT_YEARS, "default years")
    mine = {"train": (2010, 2012)}
    assert resolve_splits(None, mine, fnspid)[0] == mine
    assert resolve_splits({"test": (2020, 2020)}, mine, fnspid)[0] == {"test": (2020, 2020)}
    with pytest.raises(ValueError, match="TICKERTAG_CURATE_SPLITS"):
        resolve_splits(None, {"train": (2010, 2015), "test": (2015, 2016)}, fnspid)
