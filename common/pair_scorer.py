"""Scoring candidate key pairs with ``fuzz.ratio`` for ``common.similar_pairs``: which pairs
reach the threshold, found without a Python set of tuples (there are millions), a large block
scored a length at a time against the lengths that can reach the threshold."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rapidfuzz import fuzz, process


def max_len(la: np.ndarray | int, threshold: float) -> np.ndarray:
    """The longest key that can reach ``threshold`` against a key of length ``la``: ratio is
    ``100 * (1 - d / (la + lb))`` and an indel distance ``d`` is at least ``lb - la``."""
    return np.floor(np.asarray(la) * (200.0 - threshold) / threshold + 1e-9).astype(np.int64)


class PairScorer:
    """Scores index sets against each other and keeps the pairs at or above the threshold as
    index arrays (no Python set of tuples: there are millions of pairs).

    Most blocks are tiny (a typo variant and its company), where a ``cdist`` call costs more
    than its scoring: their pairs are listed and scored together at the end with
    ``process.cpdist``. Large blocks go to ``cdist`` by row chunks, banded by length.
    """

    SMALL = 200  # a comparison of at most this many pairs is listed, not cdist'ed
    COMPACT_AT = 1_000_000  # listed pairs held as Python ints before they are packed
    ONE_CALL = 40_000  # up to this many pairs, one cdist call (banding saves less than a call)

    def __init__(self, keys: Sequence[str], threshold: float, chunk: int,
                 threads: int = -1) -> None:
        self.keys = np.asarray(keys, dtype=object)
        self.lens = np.fromiter((len(k) for k in keys), dtype=np.int64, count=len(keys))
        self.threshold = threshold
        self.chunk = chunk
        self.threads = threads  # rapidfuzz's for large matrices (-1: all cores)
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
                          score_cutoff=self.threshold,
                          workers=self.threads if size > 200_000 else 1,
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
        his = np.searchsorted(lens, max_len(lens[starts], self.threshold), side="right")
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
        lasts = np.searchsorted(lb, max_len(la[starts], self.threshold), side="right")
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
        ok = (lo != hi) & (lb <= max_len(la, self.threshold)) & (la <= max_len(lb, self.threshold))
        self.listed_codes.append(distinct(lo[ok] * len(self.keys) + hi[ok]))

    def _score_listed(self, batch: int = 1_000_000) -> None:
        self._compact()
        code = distinct(np.concatenate(self.listed_codes))
        self.listed_codes = []
        n = len(self.keys)
        self.scored += len(code)
        for s in range(0, len(code), batch):
            x, y = code[s:s + batch] // n, code[s:s + batch] % n
            score = process.cpdist(self.keys[x], self.keys[y], scorer=fuzz.ratio,
                                   score_cutoff=self.threshold, workers=self.threads,
                                   dtype=np.uint8)
            hit = score > 0
            self._keep(x[hit], y[hit])

    def pairs(self) -> np.ndarray:
        """Distinct pairs ``(i, j)``, ``i < j``, sorted."""
        self._score_listed()
        return distinct_pairs(self.found, len(self.keys))


def distinct_pairs(found: list[np.ndarray], n: int) -> np.ndarray:
    """The distinct rows of ``(i, j)`` pair arrays over ``n`` keys, sorted (a pair may be found
    by two blocks, or by two shares)."""
    if not found:
        return np.zeros((0, 2), dtype=np.int64)
    p = np.concatenate(found)
    code = distinct(p[:, 0] * n + p[:, 1])
    return np.stack([code // n, code % n], 1)


def distinct(code: np.ndarray) -> np.ndarray:
    """Sorted distinct values (a sort: ``np.unique`` hashes, several times slower here)."""
    code = np.sort(code)
    return code[np.concatenate(([True], code[1:] != code[:-1]))] if len(code) else code
