"""Cluster the LLM's company mentions into companies (the case study's rapidfuzz step).

Three ways two mentions end in the same cluster (joined with union-find):
1. the same key: lower-cased, punctuation and legal suffixes removed
   ("Agilent Technologies Inc." -> "agilent technologies");
2. Levenshtein similarity (``fuzz.ratio``) of keys >= threshold (85, as the seed), for keys of
   4+ characters: typos and spelling variants. All-pairs is quadratic, so candidates are
   blocked by the first and by the last two characters of the key and compared with
   ``process.cdist(score_cutoff=...)`` inside each block;
3. a one-word name joins the multi-word names it heads ("agilent" -> "agilent technologies"),
   unless the word is generic ("bank", "capital", ...);
plus the ticker rule: a ticker-like mention (``AAPL``) that equals the headline's source
``stock_symbol`` joins the cluster of the LLM's normalized name for it ("Apple").
The representative of a cluster is its most frequent surface form.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from rapidfuzz import fuzz, process

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
_PUNCT = re.compile(r"[^\w\s&]")
_TICKER = re.compile(r"^[A-Z]{1,5}(?:\.[A-Z]{1,2})?$")


def name_key(name: str) -> str:
    """Comparison key: lower case, no punctuation, no legal suffixes or leading 'the'."""
    words = _PUNCT.sub(" ", name.lower().replace("&amp;", "&")).split()
    while words and words[-1] in SUFFIXES:
        words.pop()
    while words and words[0] == "the":
        words.pop(0)
    return " ".join(words) or name.lower().strip()


def is_ticker(s: str) -> bool:
    return bool(_TICKER.match(s))


class UnionFind:
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
    """Index pairs (i < j) of keys with ``fuzz.ratio >= threshold``.

    ``block=False`` compares all pairs (exact, quadratic: the benchmark's reference).
    """
    pairs: set[tuple[int, int]] = set()
    if not block:
        for lo in range(0, len(keys), chunk):
            m = process.cdist(keys[lo:lo + chunk], keys, scorer=fuzz.ratio, score_cutoff=threshold,
                              workers=-1, dtype=np.uint8)
            for i, j in zip(*np.nonzero(m), strict=True):
                a, b = lo + int(i), int(j)
                if a < b:
                    pairs.add((a, b))
        return pairs
    blocks: dict[str, list[int]] = defaultdict(list)
    for i, k in enumerate(keys):
        blocks["^" + k[:2]].append(i)
        blocks["$" + k[-2:]].append(i)
    for members in blocks.values():
        if len(members) < 2:
            continue
        sub = [keys[i] for i in members]
        for lo in range(0, len(sub), chunk):
            m = process.cdist(sub[lo:lo + chunk], sub, scorer=fuzz.ratio, score_cutoff=threshold,
                              workers=-1, dtype=np.uint8)
            for i, j in zip(*np.nonzero(m), strict=True):
                a, b = members[lo + int(i)], members[int(j)]
                if a < b:
                    pairs.add((a, b))
    return pairs


@dataclass
class Mention:
    surface: str
    normalized: str | None = None
    stock_symbol: str | None = None


@dataclass
class Clustering:
    """Surface form -> cluster id, and what each cluster holds."""

    cluster_of: dict[str, str]
    representative: dict[str, str]
    members: dict[str, Counter] = field(default_factory=dict)

    def sizes(self) -> list[tuple[str, int]]:
        return sorted(((c, sum(m.values())) for c, m in self.members.items()),
                      key=lambda x: (-x[1], x[0]))


def cluster_mentions(mentions: Iterable[Mention], threshold: float = 85,
                     block: bool = True) -> Clustering:
    """Group mentions into company clusters (see the module docstring for the rules)."""
    counts: Counter[str] = Counter()
    ticker_names: list[tuple[str, str]] = []
    for m in mentions:
        counts[m.surface] += 1
        if m.normalized and is_ticker(m.surface) and m.stock_symbol and \
                m.surface.upper() == m.stock_symbol.upper() and m.normalized != m.surface:
            ticker_names.append((m.surface, m.normalized))
    for _, norm in ticker_names:
        counts.setdefault(norm, 0)
    surfaces = sorted(counts)
    keys_of = {s: (s if is_ticker(s) else name_key(s)) for s in surfaces}
    uniq = sorted(set(keys_of.values()))
    idx = {k: i for i, k in enumerate(uniq)}
    uf = UnionFind(len(uniq))
    long_keys = [k for k in uniq if len(k) >= 4 and not is_ticker(k)]
    for a, b in fuzzy_pairs(long_keys, threshold, block):
        uf.union(idx[long_keys[a]], idx[long_keys[b]])
    heads: dict[str, list[str]] = defaultdict(list)
    for k in long_keys:
        words = k.split()
        if len(words) > 1:
            heads[words[0]].append(k)
    for k in long_keys:
        if " " not in k and k not in GENERIC:
            for longer in heads.get(k, []):
                uf.union(idx[k], idx[longer])
    for ticker, norm in ticker_names:
        uf.union(idx[keys_of[ticker]], idx[keys_of[norm]])
    groups: dict[int, Counter] = defaultdict(Counter)
    for s in surfaces:
        groups[uf.find(idx[keys_of[s]])][s] += counts[s]
    ordered = sorted(groups.values(), key=lambda c: (-sum(c.values()), c.most_common(1)[0][0]))
    cluster_of, rep, members = {}, {}, {}
    for n, c in enumerate(ordered):
        cid = f"c{n:05d}"
        members[cid] = c
        rep[cid] = max(c.items(), key=lambda kv: (kv[1], -len(kv[0]), kv[0]))[0]
        for s in c:
            cluster_of[s] = cid
    return Clustering(cluster_of, rep, members)
