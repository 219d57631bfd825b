"""Applying an alias table where the product outputs entities (``predict``, ``serve``, the
``ner`` queue): each span's ticker and score, and the headline's tickers."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from common.spans import Span
from linking.headline import TICKER_SHAPE, explicit_positions, written_as_ticker
from linking.table import AliasTable, Link
from training.data import entity_dicts


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
        if TICKER_SHAPE.match(surface):  # only ticker-shaped spans can be explicit tickers
            if pos is None:
                pos = explicit_positions(text)
            explicit = written_as_ticker(text, start, end, pos)
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


def load_cached(path: str) -> AliasTable:
    """One load per process and version of the file for the serving paths (``predict``,
    ``serve``, ``ner`` workers): a table rebuilt under a running ``ner`` worker (a run's link
    step, ``aliases build``) is read again at its next batch, not at its next restart."""
    st = Path(path).stat()
    return _load(path, st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=4)
def _load(path: str, _mtime_ns: int, _size: int) -> AliasTable:
    return AliasTable.load(path)


def linked(spans: Sequence[Span], text: str, table: AliasTable | None
           ) -> tuple[list[dict[str, Any]], list[str] | None]:
    """The output entities of ``predict``/``serve``/the ``ner`` queue for one headline, with
    ``ticker`` and ``link_score`` (None when unknown) when a table is given, and the headline's
    de-duplicated tickers (None without a table). The one place the three paths share."""
    ents = entity_dicts(list(spans))
    if table is None:
        return ents, None
    links = link(spans, text, table)
    for e, (ticker, score) in zip(ents, links, strict=True):
        e["ticker"] = ticker
        e["link_score"] = None if score is None else round(float(score), 4)
    return ents, headline_tickers(spans, text, table, links)
