"""Every pair of keys with ``fuzz.ratio >= threshold``, without scoring all pairs.

Why: clustering scores key pairs with ``fuzz.ratio``; all pairs is quadratic, and so were the
previous 2-character blocks (about 1.2e10 scored pairs on the benchmark's million names, where
this search scores about 5.5e8). Here only *candidate* pairs are scored, with the
same ``process.cdist`` scorer and cutoff, so every pair returned is an exact pair (precision 1);
what blocking can cost is recall, which ``benchmarks/cluster.py`` measures against an exact
search over the full set.

Candidates. Each key is compared without its spaces ("alliance bernstein" ~ "alliancebernstein").
Its *window* is its first ``K + 1`` characters (``PREFIX_K``), and, separately, its last
``K + 1`` (``SUFFIX_K``). Two keys are
candidates when their windows are within one edit of each other: the signatures of a window are
its ``K + 1`` one-character deletions, and one substitution, insertion, deletion or swap of
neighbours inside the window leaves a signature in common (for a substitution at ``i`` both
windows lose ``i``; for an insertion the longer window loses it and equals the shorter window's
"delete the last" signature). So a pair is missed only when *both* its first and its last
``K + 1`` characters hold two or more edits, for example two typos near each end of a short key:
a pair within ratio 85 has at most ``0.3 x`` its length in single-character insertions and
deletions, so this happens to short keys with several typos and rarely to anything else.

Cost. Keys whose windows share the "drop the outer character" signature (the same first, or
last, ``K`` characters: their *base*) form a base block, scored all against all; the other
signatures only join keys of *different* bases (typo variants), so no pair is scored twice for
one signature. Inside a block, keys are sorted by length and a row is scored only against
keys whose length a pair at the threshold allows (``len_b <= len_a * (200 - t) / t``). Score
matrices are built a row chunk at a time, as uint8; comparisons of a few pairs are listed and
scored together (``cpdist``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from common.forked import map_forked
from common.pair_scorer import PairScorer, distinct_pairs

PREFIX_K = 4  # first-character windows of K + 1 = 5 characters
SUFFIX_K = 6  # last-character windows of 7: generic tails ("capital") make 5 costly
FORK_AT = 50_000  # keys from which similar_pairs' shares run in forked processes


def _deletions(w: str) -> set[str]:
    return {w[:i] + w[i + 1:] for i in range(len(w))}


@dataclass
class _Side:
    """The block index of one side (first or last ``k + 1`` characters): key indices by
    window, each window's base (its window less the outer character), windows by base, and
    windows by signature."""

    members: dict[str, list[int]]
    base_of: dict[str, str]
    of_base: dict[str, list[str]]
    windows_of: dict[str, list[str]]

    @classmethod
    def of(cls, stripped: Sequence[str], k: int, suffix: bool) -> _Side:
        members: dict[str, list[int]] = defaultdict(list)
        for i, s in enumerate(stripped):
            members[s[-(k + 1):] if suffix else s[:k + 1]].append(i)
        base_of: dict[str, str] = {}
        of_base: dict[str, list[str]] = defaultdict(list)
        windows_of: dict[str, list[str]] = defaultdict(list)  # signature -> windows
        for w in members:
            b = w if len(w) <= k else (w[1:] if suffix else w[:k])
            base_of[w] = b
            of_base[b].append(w)
            for sig in _deletions(w) | {b}:
                windows_of[sig].append(w)
        return cls(members, base_of, of_base, windows_of)

    def block(self, base: str) -> list[int]:
        """The keys of one base block."""
        ws = self.of_base[base]
        return self.members[ws[0]] if len(ws) == 1 else [i for w in ws for i in self.members[w]]

    def groups(self, sig: str) -> list[list[int]] | None:
        """The keys of the windows sharing a signature, one list per base, largest first;
        ``None`` when they are of one base (scored whole in its block) or one window."""
        ws = self.windows_of[sig]
        if len(ws) < 2:
            return None  # the common case: no other window shares the signature
        by_base: dict[str, list[int]] = {}
        for w in ws:
            by_base.setdefault(self.base_of[w], []).extend(self.members[w])
        return sorted(by_base.values(), key=len, reverse=True) if len(by_base) > 1 else None

    def score_all(self, scorer: PairScorer) -> None:
        """Every comparison of this side, in one process."""
        for b in self.of_base:
            scorer.within(self.block(b))
        for sig in self.windows_of:
            parts = self.groups(sig)
            if parts:
                _across(scorer, parts)

    def jobs(self, side: int) -> list[tuple[int, int, str, str]]:
        """``(cost, side, kind, key)`` of each comparison, to split into shares: each base
        block all against all (``within``), and each signature that joins windows of
        different bases (``across``: typo variants). Cost: the squared number of keys."""
        out = []
        for b, ws in self.of_base.items():
            n = sum(len(self.members[w]) for w in ws)
            if n > 1:
                out.append((n * n, side, "within", b))
        for sig, ws in self.windows_of.items():
            if len(ws) < 2 or len({self.base_of[w] for w in ws}) < 2:
                continue
            n = sum(len(self.members[w]) for w in ws)
            out.append((n * n, side, "across", sig))
        return out

    def run(self, scorer: PairScorer, kind: str, key: str) -> None:
        """Score one job's candidate pairs."""
        if kind == "within":
            scorer.within(self.block(key))
            return
        parts = self.groups(key)
        if parts:
            _across(scorer, parts)


def _across(scorer: PairScorer, parts: list[list[int]]) -> None:
    """Each base's keys against the keys of the smaller bases after it: the large block once."""
    rest = [i for g in parts for i in g]
    start = 0
    for part in parts[:-1]:
        start += len(part)
        scorer.across(part, rest[start:])


def _shares(jobs: list[tuple[int, int, str, str]], n: int) -> list[list[tuple[int, int, str, str]]]:
    """``jobs`` in ``n`` shares of about equal cost: the costliest first, each to the share
    with the least so far."""
    if n == 1:
        return [jobs]
    loads, out = [0] * n, [[] for _ in range(n)]
    for job in sorted(jobs, key=lambda j: -j[0]):
        i = loads.index(min(loads))
        out[i].append(job)
        loads[i] += job[0]
    return out


def similar_pairs(keys: Sequence[str], threshold: float = 85, block: bool = True,
                  chunk: int = 2000, prefix_k: int = PREFIX_K, suffix_k: int = SUFFIX_K,
                  workers: int = 1) -> np.ndarray:
    """Index pairs ``(i, j)``, ``i < j``, of keys with ``fuzz.ratio >= threshold``, as an
    ``(n, 2)`` int64 array sorted by ``i`` then ``j``.

    ``block=False`` scores all pairs (exact and quadratic: the reference). Blocked, see the
    module docstring for which pairs can be missed. ``workers`` > 1: the comparisons are
    split into that many shares of about equal cost, each scored in a forked process
    (``common.forked``; from ``FORK_AT`` keys, below which a fork costs more than it saves);
    the pairs are the same.
    """
    if not block:
        scorer = PairScorer(keys, threshold, chunk)
        scorer.within(list(range(len(keys))))
        return scorer.pairs()
    stripped = [k.replace(" ", "") for k in keys]
    windows = [(prefix_k, False), (suffix_k, True)]
    if workers < 2 or len(keys) < FORK_AT:
        # one side's index at a time: the two together hold ~200 MB more at a million keys
        scorer = PairScorer(keys, threshold, chunk)
        for k, suffix in windows:
            _Side.of(stripped, k, suffix).score_all(scorer)  # freed before the next is built
        return scorer.pairs()
    sides = [_Side.of(stripped, k, suffix) for k, suffix in windows]
    jobs = [j for no, side in enumerate(sides) for j in side.jobs(no)]

    def score(share: list[tuple[int, int, str, str]]) -> np.ndarray:
        scorer = PairScorer(keys, threshold, chunk, threads=1)  # the shares are the threads
        for _, side, kind, key in share:
            sides[side].run(scorer, kind, key)
        return scorer.pairs()

    return distinct_pairs(map_forked(score, _shares(jobs, max(1, min(workers, len(jobs))))),
                          len(keys))
