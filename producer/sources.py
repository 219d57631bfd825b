"""Where headlines come from: the Hub (FNSPID, streamed) or local CSV / JSONL / Parquet files.

Everything goes through `datasets` streaming, so a 900k-row source is never held in memory and
the Hub and local paths behave the same. Rows come out as plain dicts with ``title``, ``date``
and ``stock_symbol``; validation happens in ``common.records.make_headline``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

HUB_FNSPID = "Zihan1004/FNSPID"
TITLE_FIELDS = ("title", "Article_title", "headline", "text")
DATE_FIELDS = ("date", "Date")
SYMBOL_FIELDS = ("stock_symbol", "Stock_symbol", "symbol", "ticker")
_BUILDERS = {".csv": "csv", ".jsonl": "json", ".json": "json", ".parquet": "parquet"}


def _pick(row: dict[str, Any], names: tuple[str, ...]) -> Any:
    for n in names:
        if n in row:
            return row[n]
    return None


def normalise_row(row: dict[str, Any]) -> dict[str, Any]:
    """Map a source's column names onto title / date / stock_symbol (missing stays missing)."""
    out: dict[str, Any] = {}
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
        kwargs: dict[str, Any] = {}
        if builder == "csv":
            # Keep every column as text and never die on a stray byte: bad rows become
            # per-record errors downstream, not a crashed producer.
            kwargs = {"encoding_errors": "replace", "keep_default_na": False, "na_filter": False,
                      "on_bad_lines": "warn"}
        ds = load_dataset(builder, data_files=str(path), split="train", streaming=True, **kwargs)
        rows = iter(ds)
    for i, row in enumerate(rows):
        if limit is not None and i >= limit:
            return
        yield normalise_row(row)
