"""Learning an alias table from labelled headlines: each name's evidence for each ticker
(``adjacent``, ``listed``, ``symbol``; weights in ``linking.table``), held-out titles dropped."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from linking.files import HELD_OUT_FILES, TRAIN_INPUTS, default_inputs, held_out_texts
from linking.headline import parse_headline
from linking.keys import norm_ticker
from linking.overrides import read_overrides
from linking.table import (
    EXAMPLE_TICKERS,
    MAX_EXAMPLES,
    MIN_SCORE,
    W_ADJACENT,
    W_LISTED,
    W_SYMBOL,
    AliasTable,
    Entry,
    TickerEvidence,
)
from training.data import norm_text, read_jsonl, spans_of


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
        parsed = parse_headline(r["text"], spans_of(r), None)
        sym = norm_ticker(r.get("stock_symbol") or "")
        known.update({t for _, t in parsed.explicit} | ({sym} if sym else set()))
    entries: dict[str, Entry] = {}
    known_set = set(known)
    for r in rows:
        text = r["text"]
        parsed = parse_headline(text, spans_of(r), known_set)
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
