"""Applying an alias table where the product outputs entities (``predict``, ``serve``, the
``ner`` queue): each span's ticker and score, and the headline's tickers."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common.spans import Span
from linking.headline import TICKER_SHAPE, explicit_positions, written_as_ticker
from linking.table import AliasTable, Link
from training.data import entity_dicts

log = logging.getLogger(__name__)


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


_Version = tuple[int, int] | None
_cache: dict[str, tuple[tuple[_Version, _Version], AliasTable]] = {}


def _version(path: str | Path | None) -> _Version:
    """A file's (mtime, size), None when there is no file: what says it was rewritten."""
    try:
        st = Path(path).stat() if path else None
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size) if st else None


def current(path: str) -> AliasTable | None:
    """The cached table of ``path`` if neither it nor the overrides file it names changed
    since it was read, else None (nothing is read: cheap enough for every request)."""
    hit = _cache.get(path)
    if hit is None:
        return None
    (table_v, over_v), table = hit
    ok = table_v == _version(path) and over_v == _version(table.overrides_path)
    return table if ok else None


def load_cached(path: str) -> AliasTable:
    """One load per process and version of the files for the serving paths (``predict``,
    ``serve``, ``ner`` workers): a table rebuilt under a running ``ner`` worker (a run's link
    step, ``aliases build``), or its overrides file edited, is read again at its next batch,
    not at its next restart."""
    table = current(path)
    if table is None:
        version = _version(path)  # before the read: a write during it is seen next time
        table = AliasTable.load(path)
        _cache[path] = ((version, _version(table.overrides_path)), table)
    return table


class LiveTable:
    """The alias table of a long-running server (``serve``), kept current without blocking a
    request: ``get`` answers from memory and, once the file or its overrides changed, reads it
    again in a background thread; requests keep the old table until the new one is in, and a
    file caught half-written is tried again ``RETRY_S`` later (the server goes on)."""

    RETRY_S = 5.0

    def __init__(self, path: str) -> None:
        self.path = path
        self.table = load_cached(path)
        self._loading = threading.Lock()
        self._tried = 0.0

    def get(self) -> AliasTable:
        if (current(self.path) is None and time.monotonic() - self._tried >= self.RETRY_S
                and self._loading.acquire(blocking=False)):
            self._tried = time.monotonic()
            threading.Thread(target=self._reload, name="alias-reload", daemon=True).start()
        return self.table

    def _reload(self) -> None:
        try:
            self.table = load_cached(self.path)
            log.info("alias table %s read again (%d names)", self.path, len(self.table.best))
        except Exception as e:  # a half-written or broken file: keep serving the old table
            log.warning("alias table %s not read again (%s); keeping the old one", self.path, e)
        finally:
            self._loading.release()


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
