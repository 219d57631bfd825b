"""Scoring an alias table on held-out gold headlines and on the hand-checked links."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common import jsonl as common_jsonl
from common.spans import Span
from linking.files import REVIEWED, TEST_FILES
from linking.keys import norm_ticker
from linking.linker import headline_tickers, link
from linking.table import AliasTable
from training.data import read_jsonl, spans_of


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


def report_figures(table_path: str | Path, test_paths: Sequence[str | Path]) -> dict[str, Any]:
    """``evaluate_table`` for ``tickertag report``'s linking section: files named without
    their directories, so the report shows no paths of the machine that wrote it."""
    out = evaluate_table(AliasTable.load(table_path), test_paths)
    out["test"] = [Path(p).name for p in out.get("test", [])]
    if out.get("reviewed"):
        out["reviewed"]["path"] = Path(out["reviewed"]["path"]).name
    return out
