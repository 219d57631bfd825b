"""Reading one headline the way the alias table needs it: which spans it writes as tickers
("(AAPL)", "NYSE: A", "$TSLA"), which are names, and which name is written right before its own
ticker (the strongest evidence)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from common.spans import Span, shown_as_ticker
from linking.keys import name_key, norm_ticker
from training.baselines import _ticker_spans

BARE_TICKER = re.compile(r"^[A-Z]{1,5}(?:\.[A-Z]{1,2})?$")
TICKER_SHAPE = re.compile(r"^[A-Z][A-Z0-9]{0,5}(?:\.[A-Z]{1,2})?$")
_NOT_TICKERS = frozenset({"NYSE", "NASDAQ", "AMEX", "OTC", "TSX", "TSXV", "LSE", "NYSEARCA",
                          "NYSEMKT", "ARCA"})
# Between a name and its ticker: "Apple (AAPL)", "Apple's (AAPL)", "Agilent (NYSE: A)".
_ADJACENT_GAP = re.compile(r"^(?:'s|’s)?\s*\(\s*(?:[A-Za-z]+(?:\s[A-Za-z]+)?\s*:\s*)?$")
_CLOSES = re.compile(r"\s*\)")


@dataclass
class Parsed:
    """One headline's spans split into explicit tickers and names, with the adjacent pairs."""

    explicit: list[tuple[int, str]]  # (start, ticker)
    names: list[tuple[int, str, str]]  # (start, surface, key), bare known tickers excluded
    bare: list[tuple[int, str, str]]  # bare all-caps spans that are known tickers
    adjacent: list[tuple[str, str]]  # (key, ticker)


def explicit_positions(text: str) -> set[tuple[int, int]]:
    """Where the headline writes tickers: the (start, end) of each ticker pattern match."""
    return set(_ticker_spans(text))


def written_as_ticker(text: str, start: int, end: int, pos: set[tuple[int, int]]) -> bool:
    """The headline writes this span as a ticker: in a ticker pattern of
    ``training.baselines._ticker_spans`` ("(BDE, VFC)", "NYSE: A", "$TSLA") or as
    ``common.spans.shown_as_ticker`` says; not an exchange ("(NYSE)"), not a shape no symbol
    has ("$ES_F"), not a mark glued to a word ("SharePoint(R)")."""
    surface = text[start:end]
    if surface.upper() in _NOT_TICKERS or not TICKER_SHAPE.match(surface):
        return False
    if (start, end) not in pos and not shown_as_ticker(text, start, end):
        return False
    paren = text.rfind("(", 0, start)
    return not (paren > 0 and text[paren - 1].isalnum() and ")" not in text[paren:start])


def parse_headline(text: str, spans: Sequence[Span], known: set[str] | None) -> Parsed:
    """Split the spans into explicit tickers, bare known tickers (``known``: the tickers seen
    anywhere; None on the first pass, when none are known yet) and names, and find the
    name-ticker pairs written side by side."""
    pos = explicit_positions(text)
    ordered = sorted(spans, key=lambda s: s.start)
    explicit: list[tuple[int, str]] = []
    names: list[tuple[int, str, str]] = []
    bare: list[tuple[int, str, str]] = []
    is_explicit = [written_as_ticker(text, s.start, s.end, pos) for s in ordered]
    for s, ex in zip(ordered, is_explicit, strict=True):
        if ex:
            explicit.append((s.start, norm_ticker(s.text)))
        elif known is not None and BARE_TICKER.match(s.text) and norm_ticker(s.text) in known:
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
    return Parsed(explicit, names, bare, adjacent)
