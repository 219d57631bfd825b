"""Where headlines come from: the Hub (FNSPID, streamed) or local CSV / JSONL / Parquet files.

Everything is streamed, so a 900k-row source is never held in memory: the Hub, JSONL and Parquet
through `datasets`, local CSV through the ``csv`` module (pandas, under `datasets`, skips a row
with too many fields with only a warning: a silently lost record). Rows come out as plain dicts
with ``title``, ``date`` and ``stock_symbol``; validation happens in
``common.records.make_headline``. A CSV row that cannot be mapped onto the header carries
``BAD_ROW`` (the reason) instead, and the producer rejects it as a counted, explained record.

A CSV header or Parquet schema without a title column is one ``MissingColumn`` error when the
source is opened, before any row is read: otherwise each of a million rows would be rejected
for the same reason. A JSONL file has no header, so there each record without a title is
rejected by itself, its error naming the fields it has (``missing_title``).
"""

from __future__ import annotations

import csv
import functools
import itertools
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

HUB_FNSPID = "Zihan1004/FNSPID"
TITLE_FIELDS = ("title", "Article_title", "headline", "text")
DATE_FIELDS = ("date", "Date")
SYMBOL_FIELDS = ("stock_symbol", "Stock_symbol", "symbol", "ticker")
_BUILDERS = {".csv": "csv", ".jsonl": "json", ".json": "json", ".parquet": "parquet"}
BAD_ROW = "_bad_row"  # set on a row that does not fit the CSV header; value: why
SOURCE_FIELDS = "_fields"  # set on a row without a title: the source's field names, for the error
MAX_NAMED_COLUMNS = 30  # an error lists at most this many of a source's columns


class MissingColumn(ValueError):
    """A source whose header has no title column (none of ``TITLE_FIELDS``)."""


@functools.lru_cache(maxsize=256)
def missing_title(columns: tuple[str, ...]) -> str:
    """Why a header or record has no title: the names found, the names expected, and a name
    that differs from an expected one only in case (``Title``), the likely mistake. Cached:
    a JSONL file's million rejected records usually share one set of fields."""
    shown = ", ".join(f"`{c}`" for c in columns[:MAX_NAMED_COLUMNS]) or "none"
    if len(columns) > MAX_NAMED_COLUMNS:
        shown += f" and {len(columns) - MAX_NAMED_COLUMNS} more"
    text = (f"no title column: found {shown}; expected one of "
            + ", ".join(f"`{n}`" for n in TITLE_FIELDS))
    wanted = {n.casefold(): n for n in TITLE_FIELDS}
    near = [(c, wanted[c.casefold()]) for c in columns if c.casefold() in wanted]
    if near:
        have, want = near[0]
        text += f"; did you mean `{have}`? (rename it to `{want}`)"
    return text


def check_columns(columns: Sequence[str], source: str) -> None:
    """Refuse a header without a title column, naming what it has (``missing_title``)."""
    if not any(n in columns for n in TITLE_FIELDS):
        raise MissingColumn(f"{source}: {missing_title(tuple(columns))}")


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
    elif BAD_ROW not in row:  # the producer names the record's fields in its rejection
        out[SOURCE_FIELDS] = tuple(str(k) for k in row)
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


def csv_header(path: Path) -> list[str]:
    """The column names of a local CSV (its first line), without reading any row."""
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
        return next(csv.reader([f.readline()]), None) or []


def parquet_columns(path: Path) -> list[str]:
    """The column names of a Parquet file, from its schema alone."""
    import pyarrow.parquet as pq

    return list(pq.read_schema(path).names)


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


def _open_rows(path: Path) -> Iterator[dict[str, Any]]:
    """A local file's raw rows, its header checked first (CSV, Parquet): a file that would
    reject every row fails here, before the caller has read, sent or counted anything."""
    if not path.exists():
        raise FileNotFoundError(f"headline source {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    builder = _BUILDERS.get(suffix)
    if builder is None:
        raise ValueError(f"unsupported source type {path.suffix!r}: use .csv, .jsonl, .parquet")
    if builder == "csv":
        check_columns(csv_header(path), path.name)
        return _iter_csv(path)
    if suffix == ".jsonl":
        return _iter_jsonl(path)
    if builder == "parquet":
        check_columns(parquet_columns(path), path.name)
    from datasets import load_dataset  # heavy: only the formats that need it

    return iter(load_dataset(builder, data_files=str(path), split="train", streaming=True))


def iter_source(source: str, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """Stream rows of ``source``: ``hub:<dataset id>`` or a local file path.

    Not a generator itself: a missing file, an unsupported type or a header without a title
    column (``MissingColumn``) raise here, when the source is opened; rows stream lazily.
    """
    if source.startswith("hub:"):
        from datasets import load_dataset

        ds = load_dataset(source[4:] or HUB_FNSPID, split="train", streaming=True)
        rows: Iterator[dict[str, Any]] = (r for r in ds if is_benzinga(r))
    else:
        rows = _open_rows(Path(source))
    return _normalised(rows, limit)


def _normalised(rows: Iterable[dict[str, Any]], limit: int | None) -> Iterator[dict[str, Any]]:
    """The lazy part of ``iter_source``: at most ``limit`` rows, each mapped onto our names."""
    for row in itertools.islice(rows, limit):
        yield normalise_row(row)
