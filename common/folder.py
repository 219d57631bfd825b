"""A directory on any fsspec filesystem: a run's stage in the result store, or a folder given
on the command line.

Why: the result store takes a local directory or an fsspec URL (``memory://``, ``s3://...``),
but the stages after annotation (curated splits, reviewed pulls) were written through local
``Path`` objects, so a remote results root held the results and lost everything curated from
them. A ``Folder`` is what those readers and writers take instead of a ``Path``: one code path
for a local folder and for an object store.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import fsspec
from fsspec import AbstractFileSystem

from common import jsonl


def is_local(fs: AbstractFileSystem) -> bool:
    """Whether ``fs`` is this machine's disk (where a rename makes a write atomic)."""
    return "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))


def write_atomic(fs: AbstractFileSystem, path: str, data: bytes) -> None:
    """Write a whole file so that readers see the old one or the new one, never a part: on a
    local disk a temporary name renamed over it, on an object store one put."""
    if is_local(fs):
        tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    else:
        fs.pipe_file(path, data)


@dataclass(frozen=True, slots=True)
class Folder:
    """``fs`` and ``path`` address the folder; ``url`` names it to a person (the local path
    as given, or the fsspec URL)."""

    fs: AbstractFileSystem
    path: str
    url: str

    @classmethod
    def at(cls, where: str | Path) -> Folder:
        """A folder by local path or fsspec URL."""
        fs, path = fsspec.core.url_to_fs(str(where))
        return cls(fs, path.rstrip("/"), str(where))

    @property
    def local(self) -> bool:
        return is_local(self.fs)

    def file(self, name: str) -> str:
        """``name``'s path on ``fs`` (``name`` may hold ``/``)."""
        return f"{self.path}/{name}"

    def name_of(self, name: str) -> str:
        """How to name the file ``name`` to a person (reports, messages)."""
        return str(Path(self.url) / name) if self.local else f"{self.url.rstrip('/')}/{name}"

    def exists(self, name: str = "") -> bool:
        """Whether the folder (no ``name``) or the file ``name`` in it exists."""
        return self.fs.exists(self.file(name) if name else self.path)

    def is_dir(self) -> bool:
        return self.fs.isdir(self.path)

    def open(self, name: str, mode: str = "rt") -> IO[Any]:
        """The file ``name``; writing makes the folders above it."""
        if mode[0] in "wa":
            self.fs.makedirs(self.file(name).rsplit("/", 1)[0], exist_ok=True)
        return self.fs.open(self.file(name), mode, **({"encoding": "utf-8"} if "b" not in mode
                                                       else {}))

    def read_jsonl(self, name: str) -> list[dict[str, Any]]:
        with self.open(name) as f:
            return list(jsonl.iter_stream(f, self.name_of(name)))

    def write_bytes(self, name: str, data: bytes) -> None:
        """The whole file at once (``write_atomic``); the folders above it are made."""
        self.fs.makedirs(self.file(name).rsplit("/", 1)[0], exist_ok=True)
        write_atomic(self.fs, self.file(name), data)

    def write_text(self, name: str, text: str) -> None:
        self.write_bytes(name, text.encode("utf-8"))

    def write_jsonl(self, name: str, rows: Iterable[dict[str, Any]]) -> int:
        """One JSON object a line, written whole; returns how many rows."""
        rows = list(rows)
        self.write_text(name, jsonl.dumps(rows))
        return len(rows)

    def remove(self, name: str) -> None:
        """Delete the file ``name`` if it is there."""
        if self.fs.exists(self.file(name)):
            self.fs.rm(self.file(name))

    @contextmanager
    def local_dir(self) -> Iterator[Path]:
        """A local directory whose files become the folder's: the folder itself on a local
        disk; elsewhere a temporary one, uploaded when the block ends without an error. For
        writers that only take a local path (``datasets``' ``save_to_disk``)."""
        if self.local:
            out = Path(self.path)
            out.mkdir(parents=True, exist_ok=True)
            yield out
            return
        with tempfile.TemporaryDirectory(prefix="tickertag-folder-") as tmp:
            yield Path(tmp)
            for p in sorted(Path(tmp).rglob("*")):
                if p.is_file():
                    rel = p.relative_to(tmp).as_posix()
                    self.fs.makedirs(self.file(rel).rsplit("/", 1)[0], exist_ok=True)
                    self.fs.put_file(str(p), self.file(rel))
