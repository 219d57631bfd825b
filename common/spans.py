"""Character spans, and aligning the LLM's strings to them.

The LLM returns strings, not offsets. ``align_spans`` finds every occurrence of each string in
the headline (exact first, then case-insensitive), at word boundaries, keeps the longest
non-overlapping matches and reports the strings it could not find: those are hallucinations
and are never stored as spans.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pydantic import BaseModel, Field

LABEL = "Company"
_STRIP = " \t\"'`“”‘’()[]{}<>,;:$"


def clean_mention(raw: object) -> str:
    """An LLM mention as it is looked up in the text: surrounding quotes, brackets, ``$`` and
    punctuation removed; anything that is not a string becomes empty."""
    return raw.strip(_STRIP) if isinstance(raw, str) else ""


class Span(BaseModel):
    """A labelled character span; ``end`` is exclusive and ``text == headline[start:end]``."""

    start: int = Field(ge=0)
    end: int
    label: str = LABEL
    text: str
    score: float | None = None

    def key(self) -> tuple[int, int, str]:
        return (self.start, self.end, self.label)


class Alignment(BaseModel):
    spans: list[Span]
    hallucinated: list[str]


def _is_boundary(text: str, start: int, end: int) -> bool:
    before = text[start - 1] if start > 0 else " "
    after = text[end] if end < len(text) else " "
    return not (before.isalnum() or after.isalnum())


def _occurrences(text: str, needle: str, ignore_case: bool) -> list[tuple[int, int]]:
    flags = re.IGNORECASE if ignore_case else 0
    found = []
    for m in re.finditer(re.escape(needle), text, flags):
        if _is_boundary(text, m.start(), m.end()):
            found.append((m.start(), m.end()))
    return found


_EXCHANGE = re.compile(r"(?:NYSE|NASDAQ|Nasdaq|AMEX|NYSEARCA|NYSEMKT|OTC|TSX|LSE)\s*:\s*$")


def shown_as_ticker(text: str, start: int, end: int) -> bool:
    """The headline marks this occurrence as a ticker: "(A)", "$A" or "NYSE: A"."""
    before, after = text[:start], text[end:end + 1]
    return (before.endswith("(") and after == ")") or before.endswith("$") or bool(
        _EXCHANGE.search(before))


def align_spans(text: str, mentions: Iterable[str], label: str = LABEL,
                case_insensitive: bool = True) -> Alignment:
    """Map mention strings to character spans in ``text``.

    Every occurrence of a found mention is a span (a company named twice is tagged twice).
    Case-insensitive matching is used only when the exact string is absent and the mention has
    at least three characters, so a ticker like ``A`` never matches the article "a". A
    one-letter mention matches only where the headline shows it as a ticker ("(A)", "$A"):
    the answer "A" must not tag the article in "A Look At ..." (two letters, as in "GE" or
    "HP", are names Benzinga writes in capitals, and match as written).
    """
    candidates: list[tuple[int, int]] = []
    hallucinated: list[str] = []
    for raw in mentions:
        needle = clean_mention(raw)
        if not needle:
            continue
        occ = _occurrences(text, needle, ignore_case=False)
        if len(needle) == 1:
            occ = [(s, e) for s, e in occ if shown_as_ticker(text, s, e)]
        if not occ and case_insensitive and len(needle) >= 3:
            occ = _occurrences(text, needle, ignore_case=True)
        if not occ:
            hallucinated.append(raw)
        candidates.extend(occ)
    # Longest first, then leftmost: "Agilent Technologies" wins over "Agilent" inside it.
    chosen: list[tuple[int, int]] = []
    for start, end in sorted(set(candidates), key=lambda se: (se[0] - se[1], se[0])):
        if all(end <= s or start >= e for s, e in chosen):
            chosen.append((start, end))
    spans = [Span(start=s, end=e, label=label, text=text[s:e]) for s, e in sorted(chosen)]
    return Alignment(spans=spans, hallucinated=hallucinated)


def check_spans(text: str, spans: Iterable[Span | dict]) -> list[Span]:
    """Validate spans against their text (in range, slice matches, no overlap) or raise."""
    out = [s if isinstance(s, Span) else Span(**s) for s in spans]
    last_end = -1
    for s in sorted(out, key=lambda s: s.start):
        if not (0 <= s.start < s.end <= len(text)):
            raise ValueError(f"span {s.start}:{s.end} out of range for text of {len(text)}")
        if text[s.start : s.end] != s.text:
            raise ValueError(f"span {s.start}:{s.end} is {text[s.start:s.end]!r}, not {s.text!r}")
        if s.start < last_end:
            raise ValueError(f"span {s.start}:{s.end} overlaps the previous span")
        last_end = s.end
    return out
