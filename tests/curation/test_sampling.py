"""Sampling fractions and determinism; split boundaries and their configuration."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from workers.curate.sampling import SampleOptions, parse_split, sample_headlines, split_of, split_rows

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
