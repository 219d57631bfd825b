"""The headline record that travels through every queue.

A headline's id is a stable hash of its text, so the same title from two sources, two runs or
two hosts is one record: dedup, idempotent writes and the LLM cache all key on it.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from pydantic import BaseModel, Field, field_validator

MAX_TITLE_CHARS = 2000  # Benzinga titles are < 300 chars; longer text is not a headline.
MAX_SYMBOL_CHARS = 16  # the longest real symbols ("BRK.B", "RDS-A", OTC codes) are far shorter
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class InvalidRecord(ValueError):
    """A source record that cannot become a headline; says which record and which field."""

    def __init__(self, record: str, field: str, reason: str) -> None:
        super().__init__(f"record {record}: field {field!r}: {reason}")
        self.record, self.field, self.reason = record, field, reason


def headline_id(text: str) -> str:
    """Stable id of a headline: first 16 hex chars of sha1 of the UTF-8 text."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


class Headline(BaseModel):
    """One headline to annotate."""

    id: str
    text: str = Field(min_length=1, max_length=MAX_TITLE_CHARS)
    date: str | None = None
    stock_symbol: str | None = None

    @field_validator("text")
    @classmethod
    def _no_control_chars(cls, v: str) -> str:
        if _CONTROL.search(v):
            raise ValueError("contains control characters")
        if not v.strip():
            raise ValueError("is blank")
        return v


def clean_title(raw: Any) -> str:
    """Normalise a raw title: decode bytes leniently, drop control chars, collapse whitespace."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    if not isinstance(raw, str):
        raise TypeError(f"expected text, got {type(raw).__name__}")
    return " ".join(_CONTROL.sub(" ", raw).split())


def make_headline(row: dict[str, Any], record: str, text_field: str = "title") -> Headline:
    """Build a Headline from a source row, or raise InvalidRecord naming the record and field."""
    if text_field not in row or row[text_field] is None:
        raise InvalidRecord(record, text_field, "missing")
    try:
        text = clean_title(row[text_field])
    except TypeError as exc:
        raise InvalidRecord(record, text_field, str(exc)) from None
    if not text:
        raise InvalidRecord(record, text_field, "empty after whitespace normalisation")
    if len(text) > MAX_TITLE_CHARS:
        raise InvalidRecord(
            record, text_field, f"{len(text)} characters, longer than {MAX_TITLE_CHARS}"
        )
    date = row.get("date")
    symbol = row.get("stock_symbol")
    if symbol is not None and not isinstance(symbol, str | int):
        raise InvalidRecord(record, "stock_symbol", f"expected text, got {type(symbol).__name__}")
    if symbol is not None and len(str(symbol)) > MAX_SYMBOL_CHARS:
        raise InvalidRecord(record, "stock_symbol", f"{len(str(symbol))} characters, longer than "
                                                    f"{MAX_SYMBOL_CHARS}")
    if date is not None and not isinstance(date, str | int | float) and not hasattr(
            date, "isoformat"):
        raise InvalidRecord(record, "date", f"expected a date, got {type(date).__name__}")
    return Headline(
        id=headline_id(text),
        text=text,
        date=str(date)[:10] if date else None,
        stock_symbol=str(symbol).upper() if symbol else None,
    )
