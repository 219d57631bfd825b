"""The blocked similar-pair search against scoring all pairs, on real names and the surface
forms the benchmark makes of them (typos at either end, suffixes, joined words, shared tails)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from curation_data import real_names
from rapidfuzz import fuzz, process

from benchmarks.company_names import make_names, variant
from common.clustering import Mention, cluster_mentions, is_ticker, name_key
from common.pair_scorer import PairScorer, max_len
from common.similar_pairs import similar_pairs


def fuzzy_keys(names: list[str]) -> list[str]:
    """The keys clustering compares: not tickers, 4+ characters."""
    return sorted({name_key(n) for n in names if not is_ticker(n) and len(name_key(n)) >= 4})


def pair_set(pairs: np.ndarray) -> set[tuple[int, int]]:
    return {(int(a), int(b)) for a, b in pairs}


@pytest.fixture(scope="module")
def realistic() -> list[str]:
    """About 550 names: 200 real ones (every 5th distinct entity text, not hand-picked) and
    two seeded surface forms of each, made the way the benchmark makes them."""
    rng = random.Random(3)
    real = sorted(set(real_names()))[::5][:200]
    return sorted(set(real) | {variant(n, rng) for n in real for _ in range(2)})


TRICKY = [
    "Agilent Technologies", "gilent Technologies", "Agilent Technologeis", "Aglient Technologies",
    "Agilent Technologies, Inc.", "AGILENT TECHNOLOGIES", "Agilent Tech",
    "Alliance Bernstein", "AllianceBernstein L.P.", "Alliance-Bernstein",
    "Arch Capital", "RBC Capital", "Arco Capital", "AXIS Capital", "Aegis Capital",
    "Acura Pharmaceuticals", "Adamas Pharmaceuticals", "Adamis Pharmaceuticals",
    "Alcoa", "Alcoaa", "Alcao", "lcoa Inc.", "Barrons", "Barron's", "arrons",
    "J.P. Morgan", "JP Morgan", "JPMorgan", "J P Moorgan", "JP Morgahn",
    "Archer Daniels Midland", "Archer-Daniels-Midland Company", "Archer Daniel Midland",
    "Rcher Daniels Midlands", "Advance Auto Parts", "Adance Auto Parts", "Advanced Auto Part",
    "Fidelity National Information", "Fidelity National Info", "Fidelity Nat Information",
]


def test_blocked_pairs_equal_all_pairs_on_realistic_names(realistic):
    keys = fuzzy_keys(realistic)
    exact = pair_set(similar_pairs(keys, 85, block=False))
    assert len(keys) > 300 and len(exact) > 50  # variants make real pairs to find
    assert pair_set(similar_pairs(keys, 85)) == exact


def test_blocked_pairs_equal_all_pairs_on_tricky_variants():
    keys = fuzzy_keys(TRICKY)
    exact = pair_set(similar_pairs(keys, 85, block=False))
    blocked = pair_set(similar_pairs(keys, 85))
    names = {(keys[a], keys[b]) for a, b in exact}
    assert ("agilent technologies", "gilent technologies") in names  # first letter lost
    assert ("arch capital", "rbc capital") in names  # a shared tail, different heads
    assert blocked == exact


@pytest.mark.parametrize("names", ["realistic", "tricky"])
def test_clusters_equal_the_all_pairs_clusters(realistic, names):
    ms = [Mention(n) for n in (realistic if names == "realistic" else TRICKY)]
    assert cluster_mentions(ms).cluster_of == cluster_mentions(ms, block=False).cluster_of


def test_every_returned_pair_reaches_the_threshold():
    keys = fuzzy_keys(make_names(3000, seed=5))
    pairs = similar_pairs(keys, 85)
    assert len(pairs) > 100
    assert all(fuzz.ratio(keys[a], keys[b]) >= 85 for a, b in pairs)
    assert (pairs[:, 0] < pairs[:, 1]).all()
    exact = pair_set(similar_pairs(keys, 85, block=False))
    found = pair_set(pairs)
    assert found <= exact and len(found) >= 0.99 * len(exact)


def brute_force(a: list[str], b: list[str]) -> set[tuple[int, int]]:
    m = process.cdist(a, b, scorer=fuzz.ratio, score_cutoff=85, dtype=np.uint8)
    return {(int(i), int(j)) for i, j in zip(*np.nonzero(m), strict=True)}


def test_large_blocks_are_scored_a_length_at_a_time_without_losing_pairs():
    """Many keys of one generic tail take the chunked, length-banded path: it finds exactly
    what one full score matrix finds, within a set and across two sets."""
    rng = random.Random(1)
    heads = sorted({n.split()[0] for n in real_names() if n.split()[0].isalpha()})[:400]
    keys = sorted({name_key(f"{h} Capital") for h in heads} |
                  {name_key(variant(f"{h} Capital", rng)) for h in heads[:200]})
    assert PairScorer.ONE_CALL < len(keys) ** 2 and len({len(k) for k in keys}) > 10
    full = {(i, j) for i, j in brute_force(keys, keys) if i < j}
    assert full and pair_set(similar_pairs(keys, 85, block=False, chunk=16)) == full
    scorer = PairScorer(keys, 85, chunk=16)
    scorer.across(list(range(0, len(keys), 2)), list(range(1, len(keys), 2)))
    assert pair_set(scorer.pairs()) == {(i, j) for i, j in full if (i - j) % 2}


@pytest.mark.parametrize("threshold", [80, 85, 90])
def test_length_band_never_drops_a_reachable_length(threshold):
    for la in range(1, 60):
        for lb in range(la, 120):
            best = 100 * 2 * la / (la + lb)  # the shorter key inside the longer one
            assert (best >= threshold) == (lb <= max_len(la, threshold)), (la, lb)


def test_forked_shares_find_the_same_pairs_as_one_process(monkeypatch):
    """``workers=2`` splits the comparisons into two shares scored in a forked child and here:
    the pairs are the same as one process's, found on 20,000 generated names (forks allowed
    below ``FORK_AT`` for the test)."""
    import common.similar_pairs as sp

    keys = fuzzy_keys(make_names(20_000))
    one = similar_pairs(keys, 85)
    monkeypatch.setattr(sp, "FORK_AT", 0)
    shares = sp._shares([j for no, side in enumerate(
        [sp._Side.of([k.replace(" ", "") for k in keys], sp.PREFIX_K, False)]) for j in side.jobs(no)], 2)
    assert all(shares) and max(sum(j[0] for j in s) for s in shares) < 0.6 * sum(
        j[0] for s in shares for j in s)  # two shares of about equal cost
    two = similar_pairs(keys, 85, workers=2)
    assert len(one) > 1000
    np.testing.assert_array_equal(two, one)


def test_forked_clustering_makes_the_same_clusters(monkeypatch):
    """``cluster_mentions(workers=2)`` (forked fuzzy search and join checks, forks allowed on
    a small set for the test) makes the clusters one process makes."""
    import common.clustering as clustering
    import common.similar_pairs as sp

    ms = [Mention(n) for n in make_names(20_000)]
    one = cluster_mentions(ms, workers=1)
    monkeypatch.setattr(sp, "FORK_AT", 0)
    monkeypatch.setattr(clustering, "FORK_PAIRS", 0)
    two = cluster_mentions(ms, workers=2)
    assert len(one.merged()) > 100  # fuzzy joins happened
    assert two.cluster_of == one.cluster_of and two.representative == one.representative
