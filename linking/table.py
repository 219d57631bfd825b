"""The alias table's evidence model: what the corpus says about each name (``Entry``,
``TickerEvidence``), how confident a name's link is, which names stand for a ticker's company
(anchors) and which are held back as its counterparts (see the package docstring for why), and
the table's file format."""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rapidfuzz import fuzz

from common.clustering import GENERIC, head_of
from linking.headline import BARE_TICKER
from linking.keys import name_key, norm_ticker
from linking.overrides import read_overrides

log = logging.getLogger(__name__)

VERSION = 1
W_ADJACENT = 4.0
W_LISTED = 2.0
W_SYMBOL = 1.0
PRIOR = 1.5
MIN_SCORE = 0.5
ANCHOR_SHARE = 0.5
SCORE_EXPLICIT_KNOWN = 1.0
SCORE_EXPLICIT_UNKNOWN = 0.8
SCORE_BARE_TICKER = 0.7
MAX_EXAMPLES = 2  # headlines kept per (name, ticker), for ``aliases show``
EXAMPLE_TICKERS = 3  # ... for a name's first three tickers only (keeps the file small)


@dataclass
class TickerEvidence:
    """How one name was seen with one ticker: headline counts per source and their weight."""

    adjacent: int = 0
    listed: int = 0
    symbol: int = 0
    weight: float = 0.0
    examples: list[str] = field(default_factory=list)


@dataclass
class Entry:
    """Everything the corpus says about one name key."""

    key: str
    names: Counter[str] = field(default_factory=Counter)  # surface forms seen
    tickers: dict[str, TickerEvidence] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return sum(e.weight for e in self.tickers.values())

    def ranked(self) -> list[tuple[str, float]]:
        """(ticker, confidence), most likely first (ties: alphabetical, so builds are stable)."""
        denom = self.total + PRIOR
        return sorted(((t, e.weight / denom) for t, e in self.tickers.items()),
                      key=lambda tc: (-tc[1], tc[0]))

    def to_json(self) -> dict[str, Any]:
        ranked = self.ranked()
        return {
            "names": dict(self.names.most_common(5)),
            "ticker": ranked[0][0] if ranked else None,
            "confidence": round(ranked[0][1], 4) if ranked else 0.0,
            "total": round(self.total, 4),
            "tickers": {t: {"adjacent": e.adjacent, "listed": e.listed, "symbol": e.symbol,
                            "weight": round(e.weight, 4),
                            **({"examples": e.examples} if e.examples else {})}
                        for t, e in sorted(self.tickers.items(), key=lambda kv: -kv[1].weight)},
        }

    @classmethod
    def from_json(cls, key: str, d: dict[str, Any]) -> Entry:
        return cls(key=key, names=Counter(d.get("names", {})), tickers={
            t: TickerEvidence(adjacent=int(e.get("adjacent", 0)), listed=int(e.get("listed", 0)),
                              symbol=int(e.get("symbol", 0)), weight=float(e["weight"]),
                              examples=list(e.get("examples", [])))
            for t, e in d.get("tickers", {}).items()})


Link = tuple[str | None, float | None]


class AliasTable:
    """Name key -> ticker evidence, the known tickers, and the user's overrides.

    ``best`` (key -> (ticker, confidence)), ``anchors`` and ``held`` are computed once, so
    ``link`` is a dict lookup per span. ``min_score`` is the confidence a name needs to be
    linked; below it, or when the name is ``held`` (see the package docstring), the span gets no
    ticker (its candidates stay in the entry, visible with ``aliases show``)."""

    def __init__(self, entries: dict[str, Entry], tickers: dict[str, int],
                 sources: list[dict[str, Any]] | None = None, built_at: str | None = None,
                 min_score: float = MIN_SCORE, overrides: dict[str, str | None] | None = None,
                 overrides_path: str | None = None) -> None:
        self.entries = entries
        self.tickers = tickers  # known ticker -> headlines it was seen in (explicit or symbol)
        self.sources = sources or []
        self.built_at = built_at or datetime.now(UTC).isoformat(timespec="seconds")
        self.min_score = min_score
        self.overrides_path = overrides_path
        self.overrides: dict[str, str | None] = {}
        self.best: dict[str, tuple[str, float]] = {}
        for k, e in entries.items():
            ranked = e.ranked()
            if ranked:
                self.best[k] = ranked[0]
        self.anchors = page_anchors(entries, self.best)
        # Names linked by co-occurrence alone (stock page or ticker list; an adjacent pairing
        # makes a name an anchor) that look like none of the ticker's anchors: a counterpart
        # of the page's company, kept with its evidence but never linked.
        self.held: dict[str, str] = {
            k: t for k, (t, c) in self.best.items()
            if c >= min_score and k not in self.anchors.get(t, ())
            and not any(resembles(k, a) for a in self.anchors.get(t, ()))}
        if overrides:
            self.apply_overrides(overrides)

    # -- overrides --------------------------------------------------------------------------

    def apply_overrides(self, overrides: dict[str, str | None]) -> None:
        """Name -> ticker (linked with score 1.0) or name -> None (never linked)."""
        for name, ticker in overrides.items():
            self.overrides[name_key(name)] = norm_ticker(ticker) if ticker else None

    # -- lookups ----------------------------------------------------------------------------

    def entry(self, name: str) -> Entry | None:
        return self.entries.get(name_key(name))

    def candidates(self, name: str) -> dict[str, float]:
        """Every ticker the name was seen with -> its confidence (empty when unknown)."""
        e = self.entry(name)
        return dict(e.ranked()) if e else {}

    def link_name(self, name: str, explicit: bool = False) -> Link:
        """The ticker for one span text. ``explicit``: the headline shows it as a ticker."""
        if explicit:
            t = norm_ticker(name)
            return t, (SCORE_EXPLICIT_KNOWN if t in self.tickers else SCORE_EXPLICIT_UNKNOWN)
        key = name_key(name)
        if key in self.overrides:
            t = self.overrides[key]
            return (t, 1.0) if t else (None, None)
        best = self.best.get(key)
        if best is not None and best[1] >= self.min_score and key not in self.held:
            return best[0], round(best[1], 4)
        if len(name) > 1 and BARE_TICKER.match(name):  # a bare "A" or "F" is not enough
            t = norm_ticker(name)
            if t in self.tickers:
                return t, SCORE_BARE_TICKER
        return None, None

    def names_for(self, ticker: str, limit: int = 10) -> list[tuple[str, float]]:
        """Names linked to ``ticker`` (best ticker, confidence >= ``min_score``), for
        ``aliases show AAPL``."""
        t = norm_ticker(ticker)
        out = [(k, c) for k, (bt, c) in self.best.items()
               if bt == t and c >= self.min_score and k not in self.held]
        return sorted(out, key=lambda kc: -kc[1])[:limit]

    def linked_names(self) -> int:
        """How many names the table links (confidence and anchor rule passed)."""
        return sum(c >= self.min_score and k not in self.held for k, (_, c) in self.best.items())

    # -- persistence ------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "built_at": self.built_at,
            "sources": self.sources,
            "params": {"w_adjacent": W_ADJACENT, "w_listed": W_LISTED, "w_symbol": W_SYMBOL,
                       "prior": PRIOR, "min_score": self.min_score,
                       "anchor_share": ANCHOR_SHARE},
            # Derived (recomputed on load), written for people reading the file.
            "anchors": {t: sorted(a) for t, a in sorted(self.anchors.items())},
            "held": dict(sorted(self.held.items())),
            "overrides": self.overrides_path,
            "tickers": dict(sorted(self.tickers.items())),
            "entries": {k: self.entries[k].to_json() for k in sorted(self.entries)},
        }

    def save(self, path: str | Path) -> Path:
        """Write the table as JSON, atomically (a server reloading it never reads half)."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.tmp")
        tmp.write_text(json.dumps(self.to_json(), ensure_ascii=False), encoding="utf-8")
        tmp.replace(p)
        return p

    @classmethod
    def load(cls, path: str | Path, overrides: str | Path | None = None) -> AliasTable:
        """Read a saved table, then apply overrides: ``overrides`` if given (must exist), else
        the file named at build time when it still exists (a table copied without it loads,
        with a warning, rather than failing a server)."""
        p = Path(path)
        data = json.loads(p.read_text(encoding="utf-8"))
        version = data.get("version")
        if not isinstance(version, int) or version > VERSION:
            raise ValueError(f"{p}: alias table version {version!r}; this tickertag reads "
                             f"versions up to {VERSION} (rebuild with `tickertag aliases build`)")
        entries = {k: Entry.from_json(k, d) for k, d in data.get("entries", {}).items()}
        params = data.get("params", {})
        table = cls(entries, {k: int(v) for k, v in data.get("tickers", {}).items()},
                    sources=data.get("sources"), built_at=data.get("built_at"),
                    min_score=float(params.get("min_score", MIN_SCORE)),
                    overrides_path=data.get("overrides"))
        if overrides is not None:
            table.apply_overrides(read_overrides(overrides))
            table.overrides_path = str(overrides)
        elif table.overrides_path:
            op = Path(table.overrides_path)
            if not op.is_absolute() and not op.exists():
                op = p.parent / op
            if op.exists():
                table.apply_overrides(read_overrides(op))
            else:
                log.warning("%s: overrides file %s not found; loaded without it", p, op)
        return table


def page_anchors(entries: dict[str, Entry], best: dict[str, tuple[str, float]]
                 ) -> dict[str, set[str]]:
    """Ticker -> the names that stand for its company: among the names whose best ticker it
    is, those with at least ``ANCHOR_SHARE`` of the heaviest one's weight, and those a headline
    writes right before it (``adjacent``)."""
    by_ticker: dict[str, list[tuple[float, str]]] = defaultdict(list)
    anchors: dict[str, set[str]] = defaultdict(set)
    for k, (t, _) in best.items():
        ev = entries[k].tickers[t]
        by_ticker[t].append((ev.weight, k))
        if ev.adjacent:
            anchors[t].add(k)
    for t, named in by_ticker.items():
        top = max(w for w, _ in named)
        anchors[t].update(k for w, k in named if w >= ANCHOR_SHARE * top)
    return dict(anchors)


def resembles(a: str, b: str) -> bool:
    """Whether two name keys are spellings of one name: one starts the other ("acadia",
    "acadia pharmaceuticals"; not a generic word such as "american"), or they are within a
    typo (``fuzz.ratio`` >= 85 on the whole keys or on their distinctive heads, heads not
    generic)."""
    if a == b:
        return True
    short, long_ = sorted((a, b), key=len)
    if len(short) >= 3 and short not in GENERIC and long_.startswith(short):
        return True
    if fuzz.ratio(a, b) >= 85:
        return True
    ha, hb = head_of(a), head_of(b)
    return ha not in GENERIC and hb not in GENERIC and min(len(ha), len(hb)) >= 4 and \
        fuzz.ratio(ha, hb) >= 85
