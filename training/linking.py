"""Entity linking: a company span -> its ticker, from an alias table learnt on the corpus.

Over 300 lines for now: building, applying and evaluating the alias table share its private
evidence model (``Entry``, ``TickerEvidence``); splitting it into a package is left for later.

Why learnt and not a bought symbol list: the names Benzinga writes ("BofA", "Alcoa", "North
Face", "ADP jobs report") are the ones the tagger outputs, and the corpus itself says which
ticker each one goes with, in three ways of different strength:

- ``adjacent`` (weight ``W_ADJACENT`` = 4): the name is written right before its ticker alone
  in brackets, ``Agilent Technologies (NYSE: A)``, ``Apple (AAPL)``. The headline states the
  pairing; only a typo in the headline makes it wrong. A bracketed list after a name ("Alcoa,
  Coach (AA, COH)") is not a pairing: it counts as ``listed``.
- ``listed`` (``W_LISTED`` = 2, shared by the headline's free explicit tickers): the headline
  shows tickers ("(BDE, VFC, JAH)", "$TSLA") that are not right after a name, so each name is
  only known to be one of them.
- ``symbol`` (``W_SYMBOL`` = 1, shared by the headline's free names): FNSPID's
  ``stock_symbol``, the stock page a headline was listed under. Noisy: analyst firms
  ("Mizuho Maintains Buy on Autodesk" is on ADSK's page), round-ups and "peers" headlines name
  companies that are not the page's, so it is the weakest source and it is shared by every
  name in the headline.

"Free" means not already paired by ``adjacent`` evidence in the same headline: in
"Apple (AAPL) Sues Samsung" on AAPL's page, AAPL is Apple's, and Samsung learns nothing.

A name's ``confidence`` in a ticker is that ticker's share of the name's evidence with a pseudo
count ``PRIOR`` (1.5) for "some ticker not seen yet": ``weight / (total + PRIOR)``. So one
stock-page sighting (1 / 2.5 = 0.4) is not enough to link (``MIN_SCORE`` = 0.5), one
explicit pairing is (4 / 5.5 = 0.73), and a name whose evidence is split between companies
("Apple" the fruit farmer vs Apple Inc., "Target" the word vs Target Corp., an analyst firm seen
on many stock pages) keeps all its candidates and a low confidence: it is never forced to one.

Stock-page evidence alone links a name only when the name looks like the page's company.
Checking the first tables by hand (names learnt from the train and silver files) showed why:
about half of the names linked by stock pages alone were the page company's counterparts, not
the company (Foxconn, Walgreens, Pershing Square, Delta, Cargill on the pages of Apple,
AmerisourceBergen, ADP, American Airlines, ADM). Benzinga files a company's own news on its
page, so a ticker's *anchors* are the names whose best ticker it is and that carry most of its
weight (at least ``ANCHOR_SHARE`` of the top name's), plus every name a headline writes right
before it (``adjacent``; a ticker list is too loose: "Silver" learnt ABX from one). A name
whose best ticker rests on co-occurrence alone is linked only if it is an anchor or resembles
one (a prefix, "Acadia" / "Acadia Pharmaceuticals"; a typo, "Adams Pharma" / "Adamas
Pharma"): spelling variants keep their links, counterparts lose them (``AliasTable.held``).
The cost is subsidiaries and acquired companies known only from their parent's page
("PharMEDium" on ABC's); an override or one explicit headline links them.

Spans that *are* tickers link to themselves: a span the headline shows as a ticker ("(A)",
"$TSLA", "NYSE: A", a ticker list; not an exchange, not "SharePoint(R)") gets score 1.0 when
the table knows that ticker (0.8 when not: the text says it is a ticker, only the symbol is
unverified). A bare all-caps span that is a known ticker of two letters or more ("ADP jobs
report") gets 0.7, but only after the name evidence, since ``HP`` may be written for HP Inc.
while HP is Helmerich & Payne's symbol; a bare "A" or "F" never links (as in
``common.spans``, one letter is a ticker only where the headline shows it as one). Bare
tickers get no co-occurrence evidence at build time, or "TSLA" in "AAPL, TSLA and MSFT
report" would learn AAPL.

Overrides (JSON or TOML, user-edited: name -> ticker, or name -> null / "" / false to unlink)
are read when the table is loaded, so a fix needs no rebuild; an override wins over everything
but a span the headline itself shows as a ticker.

Test titles never build a table: ``build_table`` drops every row whose normalised text is
protected (``training.silver.protected_texts`` of the test files) and refuses a test file as
an input, so the evaluation below measures held-out headlines.

``link`` is dict lookups plus one regex pass per headline (``benchmarks/linking.py`` times it
against a tokenizer): it adds far less than 10% to a compact model's ~1 ms per headline.
"""

from __future__ import annotations

import json
import logging
import re
import tomllib
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from rapidfuzz import fuzz

from common import jsonl as common_jsonl
from common.clustering import GENERIC, head_of
from common.clustering import name_key as _cluster_key
from common.paths import LABELED_DIR
from common.spans import Span, shown_as_ticker
from training.baselines import _ticker_spans
from training.data import norm_text, read_jsonl, spans_of

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

DEFAULT_TABLE = "models/aliases.json"
SILVER = Path("var/distil/student/silver.jsonl")
TRAIN_INPUTS = [LABELED_DIR / "benzinga_gold_train.jsonl", LABELED_DIR / "benzinga_llm_train.jsonl",
                LABELED_DIR / "benzinga_llm_extra_train.jsonl"]
TEST_FILES = [LABELED_DIR / "benzinga_gold_test.jsonl", LABELED_DIR / "benzinga_gold_test2.jsonl"]
# Never inputs, and their titles are dropped from any input: the gold test files and the
# LLM-labelled test file (same 2019-2020 band).
HELD_OUT_FILES = [*TEST_FILES, LABELED_DIR / "benzinga_llm_test.jsonl"]
REVIEWED = LABELED_DIR / "benzinga_links_reviewed.jsonl"

_BARE_TICKER = re.compile(r"^[A-Z]{1,5}(?:\.[A-Z]{1,2})?$")
_TICKER_SHAPE = re.compile(r"^[A-Z][A-Z0-9]{0,5}(?:\.[A-Z]{1,2})?$")
_NOT_TICKERS = frozenset({"NYSE", "NASDAQ", "AMEX", "OTC", "TSX", "TSXV", "LSE", "NYSEARCA",
                          "NYSEMKT", "ARCA"})
# Between a name and its ticker: "Apple (AAPL)", "Apple's (AAPL)", "Agilent (NYSE: A)".
_ADJACENT_GAP = re.compile(r"^(?:'s|’s)?\s*\(\s*(?:[A-Za-z]+(?:\s[A-Za-z]+)?\s*:\s*)?$")
_CLOSES = re.compile(r"\s*\)")
_OTC_SUFFIX = re.compile(r"\.(?:PK|OB)$")


def default_inputs() -> list[Path]:
    """The build's default inputs: the labelled training files first (on a title that is in
    two files the first wins, and reviewed labels beat the teacher's), then the silver set."""
    return [*TRAIN_INPUTS, *([SILVER] if SILVER.exists() else [])]


@lru_cache(maxsize=1 << 16)
def name_key(name: str) -> str:
    """A name's table key: ``common.clustering.name_key`` (lower case, punctuation, legal
    suffixes and a leading "the" removed, so "Agilent Technologies Inc." == "agilent
    technologies" and "The Gap" == "Gap"), cached because ``link`` calls it per span."""
    return _cluster_key(name)


def norm_ticker(raw: str) -> str:
    """A ticker as the table keys it: upper case, Benzinga's OTC suffix dropped ("AGPDY.PK" ->
    "AGPDY"), share classes kept ("BRK.B", with "BRK-B" written the same way)."""
    t = raw.strip().lstrip("$").upper().replace("-", ".")
    return _OTC_SUFFIX.sub("", t)


# --- the table -----------------------------------------------------------------------------


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
    linked; below it, or when the name is ``held`` (see the module docstring), the span gets no
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
        if len(name) > 1 and _BARE_TICKER.match(name):  # a bare "A" or "F" is not enough
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


def read_overrides(path: str | Path) -> dict[str, str | None]:
    """An overrides file: JSON or TOML (by suffix), either flat (``"Target" = "TGT"``) or under
    an ``overrides`` key/table. TOML has no null, so ``""`` or ``false`` also unlinks."""
    p = Path(path)
    text = p.read_text(encoding="utf-8")
    data = tomllib.loads(text) if p.suffix.lower() == ".toml" else json.loads(text)
    if isinstance(data, dict) and isinstance(data.get("overrides"), dict):
        data = data["overrides"]
    if not isinstance(data, dict):
        raise ValueError(f"{p}: overrides must be a mapping of name -> ticker or null")
    out: dict[str, str | None] = {}
    for name, ticker in data.items():
        if ticker in (None, "", False):
            out[str(name)] = None
        elif isinstance(ticker, str):
            out[str(name)] = ticker
        else:
            raise ValueError(f"{p}: override for {name!r} must be a ticker string or null, "
                             f"not {ticker!r}")
    return out


# --- building ------------------------------------------------------------------------------


@dataclass
class _Parsed:
    """One headline's spans split into explicit tickers and names, with the adjacent pairs."""

    explicit: list[tuple[int, str]]  # (start, ticker)
    names: list[tuple[int, str, str]]  # (start, surface, key), bare known tickers excluded
    bare: list[tuple[int, str, str]]  # bare all-caps spans that are known tickers
    adjacent: list[tuple[str, str]]  # (key, ticker)


def _explicit_positions(text: str) -> set[tuple[int, int]]:
    return set(_ticker_spans(text))


def _written_as_ticker(text: str, start: int, end: int, pos: set[tuple[int, int]]) -> bool:
    """The headline writes this span as a ticker: in a ticker pattern of
    ``training.baselines._ticker_spans`` ("(BDE, VFC)", "NYSE: A", "$TSLA") or as
    ``common.spans.shown_as_ticker`` says; not an exchange ("(NYSE)"), not a shape no symbol
    has ("$ES_F"), not a mark glued to a word ("SharePoint(R)")."""
    surface = text[start:end]
    if surface.upper() in _NOT_TICKERS or not _TICKER_SHAPE.match(surface):
        return False
    if (start, end) not in pos and not shown_as_ticker(text, start, end):
        return False
    paren = text.rfind("(", 0, start)
    return not (paren > 0 and text[paren - 1].isalnum() and ")" not in text[paren:start])


def _parse(text: str, spans: Sequence[Span], known: set[str] | None) -> _Parsed:
    pos = _explicit_positions(text)
    ordered = sorted(spans, key=lambda s: s.start)
    explicit: list[tuple[int, str]] = []
    names: list[tuple[int, str, str]] = []
    bare: list[tuple[int, str, str]] = []
    is_explicit = [_written_as_ticker(text, s.start, s.end, pos) for s in ordered]
    for s, ex in zip(ordered, is_explicit, strict=True):
        if ex:
            explicit.append((s.start, norm_ticker(s.text)))
        elif known is not None and _BARE_TICKER.match(s.text) and norm_ticker(s.text) in known:
            bare.append((s.start, s.text, name_key(s.text)))
        else:
            names.append((s.start, s.text, name_key(s.text)))
    adjacent: list[tuple[str, str]] = []
    for i, s in enumerate(ordered[:-1]):
        nxt = ordered[i + 1]
        # "Apple (AAPL)", not "Alcoa, Coach (AA, COH)": the bracket holds this one ticker.
        if not is_explicit[i] and is_explicit[i + 1] and _ADJACENT_GAP.match(
                text[s.end:nxt.start]) and _CLOSES.match(text, nxt.end):
            adjacent.append((name_key(s.text), norm_ticker(nxt.text)))
    return _Parsed(explicit, names, bare, adjacent)


@dataclass
class InputReport:
    path: str
    rows: int = 0
    used: int = 0
    protected: int = 0
    duplicates: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "rows": self.rows, "used": self.used,
                "protected": self.protected, "duplicates": self.duplicates}


def held_out_texts() -> set[str]:
    """Normalised titles of the held-out files (never part of a table)."""
    from training.silver import protected_texts

    return protected_texts(HELD_OUT_FILES)


def read_inputs(paths: Iterable[str | Path], protected: set[str]
                ) -> tuple[list[dict[str, Any]], list[InputReport]]:
    """Rows of the input files, each title once (first file wins), protected titles dropped.
    A held-out file itself is refused: its titles would all be dropped anyway, and naming it
    is a mistake worth an error."""
    held = {Path(f).resolve() for f in HELD_OUT_FILES}
    seen: set[str] = set()
    rows: list[dict[str, Any]] = []
    reports: list[InputReport] = []
    for p in paths:
        if Path(p).resolve() in held:
            raise ValueError(f"{p} is a test file: an alias table is never built from test "
                             "headlines (they evaluate it)")
        rep = InputReport(str(p))
        for r in read_jsonl(p):
            rep.rows += 1
            k = norm_text(r["text"])
            if k in protected:
                rep.protected += 1
            elif k in seen:
                rep.duplicates += 1
            else:
                seen.add(k)
                rows.append(r)
                rep.used += 1
        reports.append(rep)
    return rows, reports


def _add(entries: dict[str, Entry], key: str, ticker: str, source: str, weight: float,
         text: str) -> None:
    e = entries.setdefault(key, Entry(key))
    ev = e.tickers.setdefault(ticker, TickerEvidence())
    setattr(ev, source, getattr(ev, source) + 1)
    ev.weight += weight
    if len(ev.examples) < MAX_EXAMPLES and text not in ev.examples:
        ev.examples.append(text)


def build_from_rows(rows: Iterable[dict[str, Any]], sources: list[dict[str, Any]] | None = None,
                    min_score: float = MIN_SCORE) -> AliasTable:
    """Learn the table from labelled rows (``text``, ``entities``/``spans``, ``stock_symbol``).

    Two passes: the first collects the known tickers (explicit ticker spans and stock
    symbols), so the second can tell a bare ticker ("TSLA") from a name."""
    rows = list(rows)
    known: Counter[str] = Counter()
    for r in rows:
        parsed = _parse(r["text"], spans_of(r), None)
        sym = norm_ticker(r.get("stock_symbol") or "")
        known.update({t for _, t in parsed.explicit} | ({sym} if sym else set()))
    entries: dict[str, Entry] = {}
    known_set = set(known)
    for r in rows:
        text = r["text"]
        parsed = _parse(text, spans_of(r), known_set)
        for _, surface, key in parsed.names + parsed.bare:
            entries.setdefault(key, Entry(key)).names[surface] += 1
        paired_keys = {k for k, _ in parsed.adjacent}
        paired_tickers = {t for _, t in parsed.adjacent}
        for key, ticker in dict.fromkeys(parsed.adjacent):  # once per headline
            _add(entries, key, ticker, "adjacent", W_ADJACENT, text)
        free_names = list(dict.fromkeys(k for _, _, k in parsed.names if k not in paired_keys))
        free_tickers = list(dict.fromkeys(t for _, t in parsed.explicit
                                          if t not in paired_tickers))
        for key in free_names:
            for t in free_tickers:
                _add(entries, key, t, "listed", W_LISTED / len(free_tickers), text)
        sym = norm_ticker(r.get("stock_symbol") or "")
        if sym and sym not in paired_tickers:
            for key in free_names:
                _add(entries, key, sym, "symbol", W_SYMBOL / len(free_names), text)
    # Examples only for each name's first tickers: the file stays a few MB.
    for e in entries.values():
        for i, (_, ev) in enumerate(sorted(e.tickers.items(), key=lambda kv: -kv[1].weight)):
            if i >= EXAMPLE_TICKERS:
                ev.examples = []
    entries = {k: e for k, e in entries.items() if e.tickers}
    return AliasTable(entries, dict(known), sources=sources, min_score=min_score)


def build_table(inputs: Sequence[str | Path] | None = None, protected: set[str] | None = None,
                overrides: str | Path | None = None, min_score: float = MIN_SCORE
                ) -> AliasTable:
    """Build a table from JSONL files (default ``default_inputs()``); ``protected`` defaults
    to the held-out titles. ``overrides`` is recorded in the table and applied."""
    paths = list(inputs) if inputs else default_inputs()
    rows, reports = read_inputs(paths, held_out_texts() if protected is None else protected)
    table = build_from_rows(rows, [r.to_json() for r in reports], min_score=min_score)
    if overrides is not None:
        table.apply_overrides(read_overrides(overrides))
        table.overrides_path = str(overrides)
    return table


def build_run_table(rows: Iterable[dict[str, Any]], out: str | Path,
                    extra_inputs: Sequence[str | Path] | None = None) -> dict[str, Any]:
    """The ``link`` step after curation: an alias table from one run's results (their spans
    and ``stock_symbol``s) plus the labelled training files, written to ``out`` as the run's
    versioned artefact. Held-out titles are dropped from the run's rows as from any input."""
    protected = held_out_texts()
    seen: set[str] = set()
    run_rows = []
    for r in rows:
        k = norm_text(r["text"])
        if k in protected or k in seen or not r.get("entities"):
            continue
        seen.add(k)
        run_rows.append(r)
    extra, reports = read_inputs(list(extra_inputs if extra_inputs is not None
                                      else TRAIN_INPUTS), protected | seen)
    sources = [{"input": "run results", "used": len(run_rows)}, *[x.to_json() for x in reports]]
    table = build_from_rows([*run_rows, *extra], sources)
    path = table.save(out)
    return {"output": str(path), "run_rows": len(run_rows), "names": len(table.entries),
            "linked": table.linked_names()}


# --- linking -------------------------------------------------------------------------------


def _span_fields(s: Span | dict[str, Any]) -> tuple[int, int, str]:
    if isinstance(s, dict):
        return int(s["start"]), int(s["end"]), str(s["text"])
    return s.start, s.end, s.text


def link(spans: Sequence[Span | dict[str, Any]], text: str, table: AliasTable) -> list[Link]:
    """(ticker or None, score or None) for each span of ``text``, in the order given.

    ``spans`` are ``Span`` objects or the entity dicts of ``tickertag predict`` (``start``,
    ``end``, ``text``). Cost: one ticker-pattern pass over the headline, then dict lookups."""
    if not spans:
        return []
    pos: set[tuple[int, int]] | None = None
    out: list[Link] = []
    for s in spans:
        start, end, surface = _span_fields(s)
        explicit = False
        if _TICKER_SHAPE.match(surface):  # only ticker-shaped spans can be explicit tickers
            if pos is None:
                pos = _explicit_positions(text)
            explicit = _written_as_ticker(text, start, end, pos)
        out.append(table.link_name(surface, explicit))
    return out


def headline_tickers(spans: Sequence[Span | dict[str, Any]], text: str, table: AliasTable,
                     links: Sequence[Link] | None = None) -> list[str]:
    """The headline's linked tickers, each once, in the order their first span appears.
    Pass ``links`` (from ``link``) to avoid linking twice."""
    if links is None:
        links = link(spans, text, table)
    order = sorted(range(len(spans)), key=lambda i: _span_fields(spans[i])[0])
    return list(dict.fromkeys(t for i in order if (t := links[i][0]) is not None))


@lru_cache(maxsize=4)
def load_cached(path: str) -> AliasTable:
    """One load per process for the serving paths (``predict``, ``serve``, ``ner`` workers)."""
    return AliasTable.load(path)


def linked(spans: Sequence[Span], text: str, table: AliasTable | None
           ) -> tuple[list[dict[str, Any]], list[str] | None]:
    """The output entities of ``predict``/``serve``/the ``ner`` queue for one headline, with
    ``ticker`` and ``link_score`` (None when unknown) when a table is given, and the headline's
    de-duplicated tickers (None without a table). The one place the three paths share."""
    from training.data import entity_dicts

    ents = entity_dicts(list(spans))
    if table is None:
        return ents, None
    links = link(spans, text, table)
    for e, (ticker, score) in zip(ents, links, strict=True):
        e["ticker"] = ticker
        e["link_score"] = None if score is None else round(float(score), 4)
    return ents, headline_tickers(spans, text, table, links)


# --- evaluation ----------------------------------------------------------------------------


def read_reviewed(path: str | Path) -> list[dict[str, Any]]:
    """Hand-checked links: ``text``, ``start``, ``end``, ``span``, ``ticker`` (or null)."""
    rows = []
    for n, r in common_jsonl.iter_numbered(path):
        s, e = r.get("start"), r.get("end")
        if not isinstance(s, int) or not isinstance(e, int) or r["text"][s:e] != r.get("span"):
            raise ValueError(f"{path}:{n}: span {r.get('span')!r} is not text[{s}:{e}]")
        if "ticker" not in r:
            raise ValueError(f"{path}:{n}: field 'ticker' missing (null for no ticker)")
        rows.append(r)
    return rows


def _share(n: int, d: int) -> float | None:
    return round(n / d, 4) if d else None


def evaluate_table(table: AliasTable, test_paths: Sequence[str | Path] | None = None,
                   reviewed: str | Path | None = REVIEWED) -> dict[str, Any]:
    """Score a table on held-out gold headlines, with gold spans (the tagger's errors are not
    the linker's).

    - ``hit_rate``: over *eligible* headlines (some gold span's name has the headline's
      ``stock_symbol`` among its candidate tickers in the table, or a gold span is that
      ticker and the table knows it), the share where some gold span is linked to exactly the
      ``stock_symbol``. It asks: when the table knows the page's company is named, does it
      pick it? It is not a precision (a round-up links other companies too, rightly).
    - ``symbol_in_linked``: over headlines with at least one gold span, the share whose
      ``stock_symbol`` is among ``headline_tickers`` (the simpler figure; the page's company
      is often not named at all, so this stays well below 1 even for a perfect table).
    - ``coverage``: share of gold spans that get a ticker.
    - on the hand-checked sample (``reviewed``): ``precision`` = links equal to the checked
      ticker / links made; ``recall`` = correct links / records that have a ticker;
      ``null_kept`` = records checked as "no ticker" the table leaves unlinked / such records.
    """
    paths = list(test_paths) if test_paths else TEST_FILES
    eligible = hits = with_spans = sym_in = n_spans = n_linked = 0
    for p in paths:
        for r in read_jsonl(p):
            spans = spans_of(r)
            sym = norm_ticker(r.get("stock_symbol") or "")
            links = link(spans, r["text"], table)
            n_spans += len(spans)
            n_linked += sum(t is not None for t, _ in links)
            if not spans:
                continue
            with_spans += 1
            tickers = headline_tickers(spans, r["text"], table, links)
            sym_in += sym in tickers
            known = any(sym in table.candidates(s.text) for s in spans) or any(
                norm_ticker(s.text) == sym and sym in table.tickers for s in spans)
            if known:
                eligible += 1
                hits += any(t == sym for t, _ in links)
    out: dict[str, Any] = {
        "test": [str(p) for p in paths],
        "headlines_with_spans": with_spans,
        "eligible": eligible,
        "hits": hits,
        "hit_rate": _share(hits, eligible),
        "symbol_in_linked": _share(sym_in, with_spans),
        "spans": n_spans,
        "linked_spans": n_linked,
        "coverage": _share(n_linked, n_spans),
    }
    if reviewed and Path(reviewed).exists():
        recs = read_reviewed(reviewed)
        made = correct = with_ticker = nulls = nulls_kept = 0
        wrong: list[dict[str, Any]] = []
        for r in recs:
            sp = Span(start=r["start"], end=r["end"], text=r["span"])
            pred = link([sp], r["text"], table)[0][0]
            gold = norm_ticker(r["ticker"]) if r["ticker"] else None
            made += pred is not None
            with_ticker += gold is not None
            if gold is None:
                nulls += 1
                nulls_kept += pred is None
            if pred is not None and pred == gold:
                correct += 1
            elif pred is not None:
                wrong.append({"span": r["span"], "linked": pred, "checked": gold,
                              "text": r["text"]})
        out["reviewed"] = {
            "path": str(reviewed), "records": len(recs), "links_made": made, "correct": correct,
            "precision": _share(correct, made), "recall": _share(correct, with_ticker),
            "coverage": _share(made, len(recs)), "null_records": nulls,
            "null_kept": _share(nulls_kept, nulls), "wrong": wrong,
        }
    return out
