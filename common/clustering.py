"""Cluster the LLM's company mentions into companies (the case study's rapidfuzz step).

Ways two mentions end in the same cluster (joined with union-find):
1. the same key: lower-cased, punctuation and legal suffixes removed
   ("Agilent Technologies Inc." -> "agilent technologies", "IBM Corp" -> "ibm" == "IBM");
2. Levenshtein-based similarity (``fuzz.ratio``, the scorer of the seed's ``cdist``) of keys
   >= threshold (85) for keys of 4+ characters, *and* similar head words, and not a one-word
   name inside a longer word ("analog" / "analogic" is 86). The head check is
   there because whole-name similarity alone chains different companies through a shared
   generic tail ("Arch Capital" ~ "RBC Capital", "Acura Pharmaceuticals" ~ "Adamis ...").
   All pairs is quadratic, so only candidate pairs are scored: keys whose first five or whose
   last seven characters (spaces removed) are within one edit (``common.similar_pairs``);
3. a short form joins the longer names it starts ("agilent" -> "agilent technologies",
   "acura pharma" -> "acura pharmaceuticals"; a one-word form only at a word boundary, and
   never a generic word such as "bank" or "capital"), but only when those longer names are
   one company: "Citron" next to "Citron Research" and "Citron Products" stays alone, since
   joining both would merge two firms through it. Longest forms join first, so "agilent
   tech" has joined "agilent technologies" before "agilent" is considered;
4. tickers: a ticker-like mention (``AAPL``) that equals the headline's ``stock_symbol`` joins
   the cluster of the LLM's normalized name for it ("Apple"). Tickers never join by fuzzy
   similarity ("AAPL" ~ "AAP" is 86).
Optionally (``join_normalized``) every mention joins its normalized name; off by default
because one wrong normalization merges two whole clusters.
The representative of a cluster is its most frequent surface form.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
from rapidfuzz import fuzz

from common.forked import map_forked, usable_cores
from common.similar_pairs import similar_pairs

SUFFIXES = {
    "inc", "incorporated", "corp", "corporation", "co", "company", "ltd", "limited", "plc",
    "llc", "lp", "sa", "ag", "nv", "se", "ab", "oyj", "asa", "spa", "the", "holding",
    "holdings", "group",
}
GENERIC = {
    "bank", "banks", "capital", "financial", "international", "global", "american", "first",
    "general", "national", "united", "new", "energy", "tech", "technologies", "partners",
    "trust", "fund", "investors", "securities", "health", "media", "systems", "pharma",
    "resources", "industries", "motors", "services", "china", "us", "usa",
}
FORK_PAIRS = 100_000  # fuzzy pairs from which their join check runs in forked shares
_PUNCT = re.compile(r"[^\w\s&]")
_TICKER = re.compile(r"^[A-Z]{1,5}(?:\.[A-Z]{1,2})?$")


def name_key(name: str) -> str:
    """Comparison key: lower case, no punctuation, no legal suffixes or leading 'the'."""
    words = _PUNCT.sub(" ", name.lower().replace("&amp;", "&")).split()
    while words and (words[-1] in SUFFIXES or words[-1] in ("&", "and")):
        words.pop()  # "Cowen & Co." and "Cowen and Company" are both "cowen"
    while words and words[0] == "the":
        words.pop(0)
    return " ".join(words) or name.lower().strip()


def head_of(key: str) -> str:
    """The distinctive start of a key: its first word, extended while shorter than 4 letters
    ("j p morgan" -> "jpmorgan"), so initials compare like the names they abbreviate."""
    head = ""
    for w in key.split():
        head += w
        if len(head) >= 4:
            break
    return head


def heads_agree(a: str, b: str, threshold: float) -> bool:
    """Whether two keys start with the same name: the shorter head against the same-length
    prefix of the other key without spaces ("alliance" ~ "alliancebernstein")."""
    if len(head_of(a)) > len(head_of(b)):
        a, b = b, a
    ha = head_of(a)
    return fuzz.ratio(ha, b.replace(" ", "")[: len(ha)]) >= threshold or \
        fuzz.ratio(ha, head_of(b)) >= threshold


def fuzzy_join_ok(a: str, b: str, threshold: float) -> bool:
    """Whether a fuzzy pair of keys is one company: the heads agree, and neither is a one-word
    key that another merely extends by 2+ letters ("analog" / "analogic" scores 86, but a
    typo adds one letter, not a suffix)."""
    short, long_ = sorted((a, b), key=len)
    if " " not in long_ and long_.startswith(short) and len(long_) - len(short) >= 2:
        return False
    return heads_agree(a, b, threshold)


def is_ticker(s: str) -> bool:
    """Looks like an exchange symbol: 1-5 capitals, optionally a class (``BRK.B``)."""
    return bool(_TICKER.match(s))


class UnionFind:
    """Disjoint sets over 0..n-1; the root of a set is its smallest member (deterministic)."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, a: int) -> int:
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def fuzzy_pairs(keys: list[str], threshold: float = 85, block: bool = True,
                chunk: int = 2000) -> set[tuple[int, int]]:
    """Index pairs (i < j) of keys with ``fuzz.ratio >= threshold`` as a set (see
    ``common.similar_pairs``: ``block=False`` scores all pairs, the exact reference)."""
    return {(int(i), int(j)) for i, j in similar_pairs(keys, threshold, block, chunk)}


def _joinable(keys: list[str], pairs: np.ndarray, threshold: float, workers: int) -> np.ndarray:
    """``fuzzy_join_ok`` of each pair as a mask, in ``workers`` forked shares (a million pairs
    cost seconds of Python). Every pair is checked, also one whose keys another pair joined
    already (one process skips those): the clusters are the same either way, since
    union-find's sets do not depend on the order of the unions."""
    def ok(rows: np.ndarray) -> np.ndarray:
        out = np.empty(len(rows), dtype=bool)
        for lo, part in _chunks(rows):
            out[lo:lo + len(part)] = [fuzzy_join_ok(keys[a], keys[b], threshold)
                                      for a, b in part]
        return out

    return np.concatenate(map_forked(ok, np.array_split(pairs, workers)))


def _chunks(pairs: np.ndarray, size: int = 100_000) -> Iterator[tuple[int, list[list[int]]]]:
    """(offset, rows as Python lists) a chunk at a time: a million pairs as one Python list
    hold ~150 MB."""
    for lo in range(0, len(pairs), size):
        yield lo, pairs[lo:lo + size].tolist()


@dataclass
class Mention:
    """One company string the LLM returned, with what it said the company is called and the
    source's ticker for the headline (the only evidence that joins a ticker to a name)."""

    surface: str
    normalized: str | None = None
    stock_symbol: str | None = None


@dataclass
class Clustering:
    """Surface form -> cluster id, and what each cluster holds (surface form -> mentions)."""

    cluster_of: dict[str, str]
    representative: dict[str, str]
    members: dict[str, Counter] = field(default_factory=dict)

    def sizes(self) -> list[tuple[str, int]]:
        """(cluster id, mentions), largest first."""
        return sorted(((c, sum(m.values())) for c, m in self.members.items()),
                      key=lambda x: (-x[1], x[0]))

    def merged(self) -> list[tuple[str, list[str]]]:
        """Clusters that join different surface forms, largest first: what to eyeball."""
        return [(c, sorted(s for s, n in self.members[c].items() if n))
                for c, _ in self.sizes() if sum(1 for n in self.members[c].values() if n) > 1]


def _joins(mentions: Iterable[Mention], join_normalized: bool
           ) -> tuple[Counter[str], list[tuple[str, str]]]:
    """Surface counts, and (surface, name) pairs the evidence says are the same company."""
    counts: Counter[str] = Counter()
    joins: list[tuple[str, str]] = []
    for m in mentions:
        counts[m.surface] += 1
        if not m.normalized or m.normalized == m.surface:
            continue
        ticker_ok = is_ticker(m.surface) and bool(m.stock_symbol) and \
            m.surface.upper() == (m.stock_symbol or "").upper()
        if ticker_ok or join_normalized:
            joins.append((m.surface, m.normalized))
    for _, norm in joins:
        counts.setdefault(norm, 0)  # a node, but never counted as a mention
    return counts, joins


def _join_prefixes(keys: list[str], idx: dict[str, int], uf: UnionFind) -> None:
    """Rule 3: a key joins the keys it is a prefix of, when those are a single company.

    ``keys`` is sorted, so the keys starting with ``k`` are one contiguous range; the scan
    stops at the second company found, so a common word costs little.
    """
    for k in sorted(keys, key=lambda k: (-len(k), k)):
        single = " " not in k
        if single and k in GENERIC:
            continue
        own = uf.find(idx[k])
        target = None
        for j in range(bisect_right(keys, k), bisect_left(keys, k + "\uffff")):
            longer = keys[j]
            if single and longer[len(k)] != " ":
                continue  # "analog" does not start "analogic"
            r = uf.find(idx[longer])
            if r == own or r == target:
                continue
            if target is not None:
                target = None  # two companies: ambiguous
                break
            target = r
        else:
            if target is not None:
                uf.union(own, target)


def cluster_mentions(mentions: Iterable[Mention], threshold: float = 85, block: bool = True,
                     join_normalized: bool = False, workers: int | None = None) -> Clustering:
    """Group mentions into company clusters (see the module docstring for the rules).

    ``workers``: processes the fuzzy search may use (``similar_pairs``); default one per
    usable core."""
    counts, joins = _joins(mentions, join_normalized)
    surfaces = sorted(counts)
    keys_of = {s: name_key(s) for s in surfaces}
    uniq = sorted(set(keys_of.values()))
    idx = {k: i for i, k in enumerate(uniq)}
    uf = UnionFind(len(uniq))
    named = {keys_of[s] for s in surfaces if not is_ticker(s)}
    long_keys = [k for k in uniq if len(k) >= 4 and k in named]
    node = [idx[k] for k in long_keys]
    workers = workers or usable_cores()
    pairs = similar_pairs(long_keys, threshold, block, workers=workers)
    find = uf.find
    if workers < 2 or len(pairs) < FORK_PAIRS:
        for _, part in _chunks(pairs):
            for a, b in part:
                ra, rb = find(node[a]), find(node[b])
                if ra != rb and fuzzy_join_ok(long_keys[a], long_keys[b], threshold):
                    uf.union(ra, rb)  # a pair inside one cluster already needs no check
    else:
        for _, part in _chunks(pairs[_joinable(long_keys, pairs, threshold, workers)]):
            for a, b in part:
                uf.union(node[a], node[b])
    for surface, norm in joins:
        uf.union(idx[keys_of[surface]], idx[keys_of[norm]])
    _join_prefixes(long_keys, idx, uf)
    groups: dict[int, Counter] = defaultdict(Counter)
    for s in surfaces:
        groups[uf.find(idx[keys_of[s]])][s] += counts[s]
    ordered = sorted(groups.values(), key=lambda c: (-sum(c.values()), min(c)))
    cluster_of, rep, members = {}, {}, {}
    for n, c in enumerate(ordered):
        cid = f"c{n:05d}"
        members[cid] = c
        rep[cid] = max(c.items(), key=lambda kv: (kv[1], -len(kv[0]), kv[0]))[0]
        for s in c:
            cluster_of[s] = cid
    return Clustering(cluster_of, rep, members)
