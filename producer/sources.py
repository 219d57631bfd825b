"""Where headlines come from: the Hub (FNSPID, streamed) or local CSV / JSONL / Parquet files.

Everything is streamed, so a 900k-row source is never held in memory: the Hub, JSONL and Parquet
through `datasets`, local CSV through the ``csv`` module (pandas, under `datasets`, skips a row
with too many fields with only a warning: a silently lost record). Rows come out as plain dicts
with ``title``, ``date`` and ``stock_symbol``; validation happens in
``common.records.make_headline``. A CSV row that cannot be mapped onto the header carries
``BAD_ROW`` (the reason) instead, and the producer rejects it as a counted, explained record.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HUB_FNSPID = "Zihan1004/FNSPID"
TITLE_FIELDS = ("title", "Article_title", "headline", "text")
DATE_FIELDS = ("date", "Date")
SYMBOL_FIELDS = ("stock_symbol", "Stock_symbol", "symbol", "ticker")
_BUILDERS = {".csv": "csv", ".jsonl": "json", ".json": "json", ".parquet": "parquet"}
BAD_ROW = "_bad_row"  # set on a row that does not fit the CSV header; value: why


def _pick(row: dict[str, Any], names: tuple[str, ...]) -> Any:
    for n in names:
        if n in row:
            return row[n]
    return None


def normalise_row(row: dict[str, Any]) -> dict[str, Any]:
    """Map a source's column names onto title / date / stock_symbol (missing stays missing)."""
    out: dict[str, Any] = {}
    if BAD_ROW in row:  # keep the reason and the raw line for rejected.jsonl
        out[BAD_ROW], out["raw"] = row[BAD_ROW], row.get("raw")
    title = _pick(row, TITLE_FIELDS)
    if title is not None or any(n in row for n in TITLE_FIELDS):
        out["title"] = title
    out["date"] = _pick(row, DATE_FIELDS)
    out["stock_symbol"] = _pick(row, SYMBOL_FIELDS)
    return out


def is_benzinga(row: dict[str, Any]) -> bool:
    """FNSPID mixes publishers; the case study kept Benzinga only (it never lacks a ticker)."""
    for k in ("Url", "url", "Publisher", "publisher"):
        v = row.get(k)
        if isinstance(v, str) and "benzinga" in v.lower():
            return True
    return False


MAX_RECORD_LINES = 4  # a quoted title may hold a line break; a record spanning more is broken


def _iter_csv(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a local CSV as header -> text. Never dies on a stray byte (replaced) or a huge
    field (rejected later, with its length); a row whose field count differs from the header's
    is yielded with ``BAD_ROW`` set, since its fields cannot be trusted to be in their columns.

    An unterminated quote would make the csv module read the rest of the file as one field: a
    record that spans more than ``MAX_RECORD_LINES`` physical lines is rejected as its first
    line, and reading resumes at the line after it.
    """
    csv.field_size_limit(max(csv.field_size_limit(), 64 * 1024 * 1024))
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
        header = next(csv.reader([f.readline()]), None)
        if not header:
            return
        lines = iter(f)
        line_no = 1
        while True:
            first = next(lines, None)
            if first is None:
                return
            line_no += 1
            buf = [first]
            # pull continuation lines only while a quote is still open
            while _open_quote("".join(buf)) and len(buf) <= MAX_RECORD_LINES:
                nxt = next(lines, None)
                if nxt is None:
                    break
                buf.append(nxt)
            if _open_quote("".join(buf)):
                yield {BAD_ROW: f"line {line_no}: unterminated quote", "raw": first[:500]}
                lines = itertools.chain(buf[1:], lines)  # re-read what followed it
                continue
            fields = next(csv.reader(["".join(buf)]), [])
            start, line_no = line_no, line_no + len(buf) - 1
            if not fields:  # a blank line is not a record
                continue
            if len(fields) != len(header):
                yield {BAD_ROW: f"line {start}: {len(fields)} fields, header has "
                                f"{len(header)}", "raw": ",".join(fields)[:500]}
                continue
            yield dict(zip(header, fields, strict=True))


def _open_quote(record: str) -> bool:
    """Whether a CSV record's quotes leave a field open (an odd number of quote characters:
    an escaped quote inside a quoted field is two)."""
    return record.count('"') % 2 == 1


def _iter_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a JSONL file; a line that is not a JSON object is yielded with ``BAD_ROW`` (the
    line number and why), so one broken line is a rejected record, not a failed run."""
    from common.jsonl import iter_lenient

    for n, row, error, line in iter_lenient(path):
        yield {BAD_ROW: f"line {n}: {error}", "raw": line[:500]} if error else row


def iter_source(source: str, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """Stream rows of ``source``: ``hub:<dataset id>`` or a local file path."""
    from datasets import load_dataset

    if source.startswith("hub:"):
        ds = load_dataset(source[4:] or HUB_FNSPID, split="train", streaming=True)
        rows: Iterator[dict[str, Any]] = (r for r in ds if is_benzinga(r))
    else:
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"headline source {source!r} does not exist")
        builder = _BUILDERS.get(path.suffix.lower())
        if builder is None:
            raise ValueError(f"unsupported source type {path.suffix!r}: use .csv, .jsonl, .parquet")
        if builder == "csv":
            rows = _iter_csv(path)
        elif path.suffix.lower() == ".jsonl":
            rows = _iter_jsonl(path)
        else:
            rows = iter(load_dataset(builder, data_files=str(path), split="train", streaming=True))
    for i, row in enumerate(rows):
        if limit is not None and i >= limit:
            return
        yield normalise_row(row)
