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

import numpy as np
from rapidfuzz import fuzz, process

PREFIX_K = 4  # first-character windows of K + 1 = 5 characters
SUFFIX_K = 6  # last-character windows of 7: generic tails ("capital") make 5 costly


def _max_len(la: np.ndarray | int, threshold: float) -> np.ndarray:
    """The longest key that can reach ``threshold`` against a key of length ``la``: ratio is
    ``100 * (1 - d / (la + lb))`` and an indel distance ``d`` is at least ``lb - la``."""
    return np.floor(np.asarray(la) * (200.0 - threshold) / threshold + 1e-9).astype(np.int64)


class _Scorer:
    """Scores index sets against each other and keeps the pairs at or above the threshold as
    index arrays (no Python set of tuples: there are millions of pairs).

    Most blocks are tiny (a typo variant and its company), where a ``cdist`` call costs more
    than its scoring: their pairs are listed and scored together at the end with
    ``process.cpdist``. Large blocks go to ``cdist`` by row chunks, banded by length.
    """

    SMALL = 200  # a comparison of at most this many pairs is listed, not cdist'ed
    COMPACT_AT = 1_000_000  # listed pairs held as Python ints before they are packed
    ONE_CALL = 40_000  # up to this many pairs, one cdist call (banding saves less than a call)

    def __init__(self, keys: Sequence[str], threshold: float, chunk: int) -> None:
        self.keys = np.asarray(keys, dtype=object)
        self.lens = np.fromiter((len(k) for k in keys), dtype=np.int64, count=len(keys))
        self.threshold = threshold
        self.chunk = chunk
        self.found: list[np.ndarray] = []
        self.listed_a: list[int] = []
        self.listed_b: list[int] = []
        self.listed_codes: list[np.ndarray] = []
        self.scored = 0  # pairs scored, for the benchmark

    def _keep(self, a: np.ndarray, b: np.ndarray) -> None:
        keep = a != b
        self.found.append(np.stack([np.minimum(a, b)[keep], np.maximum(a, b)[keep]], 1))

    def _score(self, rows: np.ndarray, cols: np.ndarray) -> None:
        if len(rows) == 0 or len(cols) == 0:
            return
        size = len(rows) * len(cols)
        self.scored += size
        # Threads cost ~0.4 ms to start: worth it for large matrices only.
        m = process.cdist(self.keys[rows], self.keys[cols], scorer=fuzz.ratio,
                          score_cutoff=self.threshold, workers=-1 if size > 200_000 else 1,
                          dtype=np.uint8)
        i, j = np.nonzero(m)
        if len(i):
            self._keep(rows[i], cols[j])

    def _list(self, a: list[int], b: list[int]) -> None:
        for x in a:
            self.listed_a.extend([x] * len(b))
            self.listed_b.extend(b)
        if len(self.listed_a) > self.COMPACT_AT:
            self._compact()

    def _list_within(self, members: list[int]) -> None:
        n = len(members)
        for i in range(n - 1):
            self.listed_a.extend([members[i]] * (n - 1 - i))
            self.listed_b.extend(members[i + 1:])
        if len(self.listed_a) > self.COMPACT_AT:
            self._compact()

    def _by_length(self, members: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Members sorted by key length, their lengths, and where each length starts."""
        arr = np.asarray(members, dtype=np.int64)
        arr = arr[np.argsort(self.lens[arr], kind="stable")]
        lens = self.lens[arr]
        starts = np.flatnonzero(np.concatenate(([True], lens[1:] != lens[:-1])))
        return arr, lens, starts

    def within(self, members: list[int]) -> None:
        """All pairs inside one set; large sets a length at a time against the lengths that
        can reach the threshold."""
        n = len(members)
        if n < 2:
            return
        if n * (n - 1) // 2 <= self.SMALL:
            self._list_within(members)
            return
        arr, lens, starts = self._by_length(members)
        if n * n <= self.ONE_CALL:
            self._score(arr, arr)
            return
        ends = np.append(starts[1:], n)
        his = np.searchsorted(lens, _max_len(lens[starts], self.threshold), side="right")
        for lo, end, hi in zip(starts.tolist(), ends.tolist(), his.tolist(), strict=True):
            for r in range(lo, end, self.chunk):
                self._score(arr[r:min(end, r + self.chunk)], arr[r:hi])

    def across(self, a: list[int], b: list[int]) -> None:
        """All pairs with one key in ``a`` and one in ``b``, banded by length likewise."""
        if len(a) * len(b) <= self.SMALL:
            self._list(a, b)
            return
        if len(a) * len(b) <= self.ONE_CALL:
            self._score(np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64))
            return
        if len(a) > len(b):
            a, b = b, a
        aa, la, starts = self._by_length(a)
        bb, lb, _ = self._by_length(b)
        ratio = (200.0 - self.threshold) / self.threshold
        firsts = np.searchsorted(lb, np.ceil(la[starts] / ratio - 1e-9), side="left")
        lasts = np.searchsorted(lb, _max_len(la[starts], self.threshold), side="right")
        ends = np.append(starts[1:], len(aa))
        for lo, end, first, last in zip(starts.tolist(), ends.tolist(), firsts.tolist(),
                                        lasts.tolist(), strict=True):
            for r in range(lo, end, self.chunk):
                self._score(aa[r:min(end, r + self.chunk)], bb[first:last])

    def _compact(self) -> None:
        """Listed pairs -> one int64 code each (``lo * n + hi``), dropping those whose lengths
        cannot reach the threshold: Python lists of millions of ints cost 8x the memory."""
        a = np.asarray(self.listed_a, dtype=np.int64)
        b = np.asarray(self.listed_b, dtype=np.int64)
        self.listed_a, self.listed_b = [], []
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        del a, b
        la, lb = self.lens[lo], self.lens[hi]
        ok = (lo != hi) & (lb <= _max_len(la, self.threshold)) & (la <= _max_len(lb, self.threshold))
        self.listed_codes.append(_distinct(lo[ok] * len(self.keys) + hi[ok]))

    def _score_listed(self, batch: int = 1_000_000) -> None:
        self._compact()
        code = _distinct(np.concatenate(self.listed_codes))
        self.listed_codes = []
        n = len(self.keys)
        self.scored += len(code)
        for s in range(0, len(code), batch):
            x, y = code[s:s + batch] // n, code[s:s + batch] % n
            score = process.cpdist(self.keys[x], self.keys[y], scorer=fuzz.ratio,
                                   score_cutoff=self.threshold, workers=-1, dtype=np.uint8)
            hit = score > 0
            self._keep(x[hit], y[hit])

    def pairs(self) -> np.ndarray:
        """Distinct pairs ``(i, j)``, ``i < j``, sorted."""
        self._score_listed()
        if not self.found:
            return np.zeros((0, 2), dtype=np.int64)
        p = np.concatenate(self.found)
        n = len(self.keys)
        code = _distinct(p[:, 0] * n + p[:, 1])
        return np.stack([code // n, code % n], 1)


def _distinct(code: np.ndarray) -> np.ndarray:
    """Sorted distinct values (a sort: ``np.unique`` hashes, several times slower here)."""
    code = np.sort(code)
    return code[np.concatenate(([True], code[1:] != code[:-1]))] if len(code) else code


def _deletions(w: str) -> set[str]:
    return {w[:i] + w[i + 1:] for i in range(len(w))}


def _block_side(scorer: _Scorer, stripped: Sequence[str], k: int, suffix: bool) -> None:
    """Score the candidates of one side (first or last ``k + 1`` characters): each base block
    all against all, then keys of different bases whose windows share a signature."""
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
    for ws in of_base.values():
        scorer.within(members[ws[0]] if len(ws) == 1 else [i for w in ws for i in members[w]])
    for ws in windows_of.values():
        if len(ws) < 2:
            continue  # the common case: no other window shares the signature
        groups: dict[str, list[int]] = {}
        for w in ws:
            groups.setdefault(base_of[w], []).extend(members[w])
        if len(groups) < 2:
            continue  # one base: its block was scored whole
        parts = sorted(groups.values(), key=len, reverse=True)  # the large block once
        rest = [i for g in parts for i in g]
        start = 0
        for part in parts[:-1]:
            start += len(part)
            scorer.across(part, rest[start:])


def similar_pairs(keys: Sequence[str], threshold: float = 85, block: bool = True,
                  chunk: int = 2000, prefix_k: int = PREFIX_K, suffix_k: int = SUFFIX_K
                  ) -> np.ndarray:
    """Index pairs ``(i, j)``, ``i < j``, of keys with ``fuzz.ratio >= threshold``, as an
    ``(n, 2)`` int64 array sorted by ``i`` then ``j``.

    ``block=False`` scores all pairs (exact and quadratic: the reference). Blocked, see the
    module docstring for which pairs can be missed.
    """
    scorer = _Scorer(keys, threshold, chunk)
    if not block:
        scorer.within(list(range(len(keys))))
        return scorer.pairs()
    stripped = [k.replace(" ", "") for k in keys]
    _block_side(scorer, stripped, prefix_k, suffix=False)
    _block_side(scorer, stripped, suffix_k, suffix=True)
    return scorer.pairs()
