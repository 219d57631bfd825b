"""JSON Lines, read and written one way everywhere.

Why one module: labelled files, predictions, curated splits, reviewed pulls, silver sets and
exports are all JSONL; five copies of the loop differed in encoding, blank-line handling,
atomicity and how a broken line was reported. Here: UTF-8, ``ensure_ascii=False``, blank lines
skipped, a broken line named by file and line number, writes atomic (a reader sees the old file
or the new one, never half of one).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


def dumps(rows: Iterable[dict[str, Any]]) -> str:
    """Rows as JSONL text (each row on one line, newline-terminated)."""
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def iter_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """The objects of a JSONL file; ``ValueError`` names the file and line of a broken one."""
    for _, row in iter_numbered(path):
        yield row


def iter_numbered(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) pairs, so a caller's own checks can name the line too."""
    for n, row, error, _ in iter_lenient(path, errors="strict"):
        if error:
            raise ValueError(f"{path}:{n}: {error}")
        yield n, row


def iter_lenient(path: str | Path, errors: str = "replace"
                 ) -> Iterator[tuple[int, dict[str, Any], str | None, str]]:
    """(line number, object, error, raw line) for each non-blank line: a line that is not a
    JSON object comes with an error and an empty object, so a caller can reject it as one
    record (the producer) or stop (``iter_numbered``)."""
    with open(path, encoding="utf-8", errors=errors) as f:
        yield from _parse(f)


def iter_stream(lines: Iterable[str], name: str) -> Iterator[dict[str, Any]]:
    """The objects of JSONL text already open (an fsspec file of the result store, any
    iterable of lines); ``ValueError`` names ``name`` and the line of a broken one."""
    for n, row, error, _ in _parse(lines):
        if error:
            raise ValueError(f"{name}:{n}: {error}")
        yield row


def _parse(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, Any], str | None, str]]:
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            yield n, {}, f"not JSON ({e.msg})", line
            continue
        if not isinstance(row, dict):
            yield n, {}, f"a JSON {type(row).__name__}, not an object", line
            continue
        yield n, row, None, line


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    return list(iter_jsonl(path))


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write ``rows`` atomically (temp file + rename); returns how many were written."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp-{uuid.uuid4().hex[:8]}")
    n = 0
    with open(tmp, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(dumps([r]))
            n += 1
    os.replace(tmp, p)
    return n
