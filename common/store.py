"""Durable result and dead-letter store: JSONL shards under a directory or fsspec URL.

Layout of one run (``ROOT/RUN/``)::

    results/<batch_id>.jsonl   one line per headline, written atomically, one file per batch
    dead/<batch_id>.json       a batch (or the part of one) that failed for good, with its error
    dead/requeued/...          dead letters that ``tickertag requeue`` sent back
    rejected.jsonl             source records that never became headlines, with the reason
    curated/, reviewed/        curation's splits and reports, review pulls (``stage``: read and
                               written through the same filesystem as the results)

A batch id is a hash of its headline ids, so a redelivered batch rewrites the same shard: writes
are idempotent and a crash between write and ack produces no duplicate. Object stores
(``s3://...``) make each put atomic; on a local disk the shard is written to a temporary name
and renamed.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import fsspec

from common import jsonl
from common.folder import Folder, is_local, write_atomic


def batch_id(headline_ids: Iterable[str]) -> str:
    """Stable id of a batch: hash of its sorted headline ids."""
    h = hashlib.sha1("\n".join(sorted(headline_ids)).encode()).hexdigest()
    return h[:20]


def result_key(hid: str, model: str, prompt_version: str) -> str:
    """Idempotency key of one result: headline + model + prompt version."""
    return f"{hid}:{model}:{prompt_version}"


class ResultStore:
    """Results, dead letters and rejected inputs of one run."""

    def __init__(self, root: str, run_id: str) -> None:
        self.root = root.rstrip("/")
        self.run_id = run_id
        self.fs, self.base = fsspec.core.url_to_fs(f"{self.root}/{run_id}")
        self.local = is_local(self.fs)
        for sub in ("results", "dead", "dead/requeued"):
            self.fs.makedirs(f"{self.base}/{sub}", exist_ok=True)

    # -- paths ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"{self.root}/{self.run_id}"

    def _p(self, *parts: str) -> str:
        return "/".join([self.base, *parts])

    def _write_atomic(self, path: str, data: bytes) -> None:
        write_atomic(self.fs, path, data)

    # -- the run's stage directories (one place names them) -------------------------------
    STAGES = ("results", "dead", "curated", "reviewed")

    def stage_dir(self, stage: str) -> Path:
        """A local path for a stage's files: ``results``, ``dead``, ``curated`` (curation's
        splits and reports), ``reviewed`` (review pulls); also ``annotations.jsonl`` and
        ``aliases.json`` live at the run's root (``run_file``). Only for a store on a local
        disk; ``stage`` reads and writes a stage wherever the store is."""
        if stage not in self.STAGES:
            raise ValueError(f"unknown stage {stage!r}; choose from {self.STAGES}")
        if not self.local:
            raise ValueError(f"{self.url} is not a local directory: use ResultStore.stage")
        return Path(self.url) / stage

    def stage(self, stage: str) -> Folder:
        """A stage's folder through the store's filesystem (a local directory or any fsspec
        URL), so curated and reviewed output lives next to the results wherever they are."""
        if stage not in self.STAGES:
            raise ValueError(f"unknown stage {stage!r}; choose from {self.STAGES}")
        url = str(self.stage_dir(stage)) if self.local else f"{self.url}/{stage}"
        return Folder(self.fs, self._p(stage), url)

    def run_file(self, name: str) -> Path:
        """A file at the root of the run's directory (the merged export, the alias table), as a
        local path: only for a store on a local disk; ``run_folder`` reaches it anywhere."""
        if not self.local:
            raise ValueError(f"{self.url} is not a local directory: use ResultStore.run_folder")
        return Path(self.url) / name

    def run_folder(self) -> Folder:
        """The run's own folder through the store's filesystem: the files that belong to the
        whole run (the alias table) live there wherever the store is."""
        return Folder(self.fs, self.base, str(Path(self.url)) if self.local else self.url)

    def delete(self) -> None:
        """Remove the whole run from the store (results, dead letters, rejected, curated...):
        what ``tickertag reset --results`` does, on a local directory or any fsspec store."""
        if self.fs.exists(self.base):
            self.fs.rm(self.base, recursive=True)

    # -- results -------------------------------------------------------------------------
    def write_results(self, bid: str, records: list[dict[str, Any]], staged: str | None = None
                      ) -> None:
        """The batch's shard, or with ``staged`` its staged copy (see ``promote``)."""
        data = jsonl.dumps(records).encode()
        path = self._staged("results", bid, staged) if staged else self._p("results", f"{bid}.jsonl")
        self._write_atomic(path, data)

    def discard_results(self, bid: str) -> None:
        """Drop a batch's shard written by an earlier attempt that this attempt supersedes."""
        path = self._p("results", f"{bid}.jsonl")
        if self.fs.exists(path):
            self.fs.rm(path)

    # -- an outcome staged, then promoted once the ledger recorded it ----------------------
    # Why: checking a fence and then writing was two steps; a copy cut off between them wrote
    # over the outcome another copy had recorded. Now each copy writes its outcome under its own
    # staging names (invisible to readers: they list ``*.jsonl`` / ``*.json``), the ledger's
    # atomic finish decides which copy recorded the batch, and only that copy's files are
    # renamed into place; a losing copy drops its own.
    def _staged(self, kind: str, bid: str, tag: str) -> str:
        return self._p(kind, f"{bid}{'.jsonl' if kind == 'results' else '.json'}.staged-{tag}")

    def promote(self, bid: str, tag: str, results: bool, dead: bool) -> None:
        """Make the staged outcome ``tag`` the batch's outcome: each of its two files is the
        staged one or absent. Idempotent: a copy that finishes a promotion another copy began
        (it died between the ledger and the renames) ends in the same state."""
        for kind, final, present in (("results", self._p("results", f"{bid}.jsonl"), results),
                                     ("dead", self._p("dead", f"{bid}.json"), dead)):
            staged = self._staged(kind, bid, tag)
            if present and self.fs.exists(staged):
                if self.local:
                    os.replace(staged, final)
                else:
                    self.fs.mv(staged, final)
            elif not present and self.fs.exists(final):
                self.fs.rm(final)
        # what other copies staged and never recorded (a ledger error mid-way): dropped with the
        # decision, so staging names do not pile up
        for kind in ("results", "dead"):
            for path in self.fs.glob(self._staged(kind, bid, "*")):
                if not path.endswith(f".staged-{tag}"):
                    self.fs.rm(path)

    def drop_staged(self, bid: str, tag: str) -> None:
        for kind in ("results", "dead"):
            path = self._staged(kind, bid, tag)
            if self.fs.exists(path):
                self.fs.rm(path)

    def iter_results(self) -> Iterator[dict[str, Any]]:
        for path in sorted(self.fs.glob(self._p("results", "*.jsonl"))):
            with self.fs.open(path, "rt", encoding="utf-8") as f:
                yield from jsonl.iter_stream(f, path)

    def done_ids(self) -> set[str]:
        """Headline ids that already have a result in this run (for resuming)."""
        return {r["id"] for r in self.iter_results()}

    # -- dead letters --------------------------------------------------------------------
    def write_dead(self, bid: str, headlines: list[dict], error: str, error_type: str,
                   attempts: int, task: str | None = None, kwargs: dict | None = None,
                   staged: str | None = None) -> None:
        """``task``/``kwargs`` let ``requeue`` send the batch back to the queue it came from;
        with ``staged``, the staged copy (see ``promote``)."""
        entry = {
            "batch_id": bid, "run_id": self.run_id, "error": error, "error_type": error_type,
            "attempts": attempts, "failed_at": time.time(), "headlines": headlines,
            "task": task, "kwargs": kwargs or {},
        }
        path = self._staged("dead", bid, staged) if staged else self._p("dead", f"{bid}.json")
        self._write_atomic(path, json.dumps(entry).encode())

    def discard_dead(self, bid: str) -> None:
        """Drop a batch's dead letter written by an earlier attempt that this attempt superseded
        (else a headline that failed then, and succeeded on redelivery, is both)."""
        path = self._p("dead", f"{bid}.json")
        if self.fs.exists(path):
            self.fs.rm(path)

    def iter_dead(self) -> Iterator[dict[str, Any]]:
        for path in sorted(self.fs.glob(self._p("dead", "*.json"))):
            with self.fs.open(path, "rt", encoding="utf-8") as f:
                yield json.load(f)

    def dead_ids(self) -> list[str]:
        """Batch ids of the run's dead letters, sorted. Only a listing: a concurrent
        ``requeue`` may move a letter away before it is read (``read_dead`` says so)."""
        paths = self.fs.glob(self._p("dead", "*.json"))
        return sorted(p.rsplit("/", 1)[-1].removesuffix(".json") for p in paths)

    def read_dead(self, bid: str) -> dict[str, Any] | None:
        """One dead letter, or None when it is gone (requeued meanwhile by another process)."""
        try:
            with self.fs.open(self._p("dead", f"{bid}.json"), "rt", encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return None

    def mark_requeued(self, bid: str) -> None:
        """Move a dead letter aside once it is back in the queue (kept for the audit trail)."""
        src = self._p("dead", f"{bid}.json")
        dst = self._p("dead", "requeued", f"{bid}-{int(time.time() * 1000)}.json")
        self.fs.mv(src, dst)

    # -- rejected source records ---------------------------------------------------------
    def write_rejected(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        path = self._p("rejected.jsonl")
        with self.fs.open(path, "ab") as f:
            f.write(jsonl.dumps(rows).encode())

    # -- export --------------------------------------------------------------------------
    def export(self, out: str) -> int:
        """Merge shards into one JSONL or Parquet file (by extension), one row per result key."""
        seen: dict[str, dict] = {}
        for r in self.iter_results():
            seen[r["key"]] = r
        rows = sorted(seen.values(), key=lambda r: r["id"])
        if out.endswith(".parquet"):
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.Table.from_pylist(rows), out)
        else:
            jsonl.write_jsonl(out, rows)
        return len(rows)
