"""The producer's peak memory against the number of rows in its source.

Why: a source whose rows are all rejected (a JSONL whose title field is ``Title``, say) once
kept every rejected record in a list until the end of the run: ~1 GB for a million rows, and a
producer killed on the way wrote no ``rejected.jsonl`` at all. Memory must stay flat in the
row count for any file, so this script runs the real ``Producer`` on files of growing size and
reports the peak RSS of each run, each in a fresh process (a peak is never lowered).

Two kinds of file, JSON lines of ``{"Title": ..., "date": ...}`` (``bad``: every record
rejected, all written to ``rejected.jsonl``) and of ``{"title": ...}`` (``good``: every record
a new headline, claimed in Redis and handed to a publisher that drops it, so no worker and no
queue is involved and only the producer's own state is measured). Needs a Redis (``--redis``,
a db of its own: each run's keys are deleted after it).

``--root DIR`` measures the ``producer`` package of another checkout (e.g. an older commit
exported with ``git archive``) on the same files, for a before/after table.

Usage::

    python benchmarks/producer_memory.py                      # 100k and 200k rows, both kinds
    python benchmarks/producer_memory.py --rows 100000 1000000 --kinds bad
    python benchmarks/producer_memory.py --root /tmp/old-checkout --kinds bad
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("bad", "good")


def write_source(path: Path, rows: int, kind: str) -> None:
    """``rows`` JSON lines, streamed to disk (the parent never holds the file)."""
    field = "Title" if kind == "bad" else "title"
    with open(path, "w", encoding="utf-8") as f:
        for i in range(rows):
            f.write(json.dumps({field: f"Company {i} Beats Fourth-Quarter Estimates",
                                "date": "2024-03-01", "stock_symbol": "ABC"}) + "\n")


def rss_mb() -> float:
    """This process's peak resident set so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(source: Path, kind: str, redis_url: str, results: Path) -> dict:
    """Run the producer once on ``source`` in this (fresh) process and measure it."""
    import datasets  # noqa: F401  (in the baseline: some versions import it to read a source)

    from common.celery_app import app
    from common.settings import Settings
    from producer import produce
    from producer.produce import Producer
    from producer.sources import iter_source

    produce.send_batch = lambda *a, **k: None  # no broker traffic: the producer alone
    s = Settings(redis_url=redis_url, results_dir=str(results), run_id=f"mem-{uuid.uuid4().hex[:8]}",
                 auto_curate=False, max_batches_in_flight=10**9)
    p = Producer(app, s)
    base = rss_mb()  # imports, the app, the Redis client
    t0 = time.perf_counter()
    try:
        rep = p.run(iter_source(str(source)), source.name)
    finally:
        p.ledger.reset()
    rejected = Path(results) / s.run_id / "rejected.jsonl"
    lines = sum(1 for _ in open(rejected, "rb")) if rejected.exists() else 0
    return {"rows": rep.rows, "rejected": rep.rejected, "enqueued": rep.enqueued,
            "rejected_lines": lines, "examples": len(rep.rejected_examples),
            "seconds": round(time.perf_counter() - t0, 1), "base_mb": round(base, 1),
            "peak_mb": round(rss_mb(), 1)}


def measure(root: Path, source: Path, kind: str, redis_url: str) -> dict:
    """One run in a fresh interpreter whose ``producer`` package comes from ``root``."""
    with tempfile.TemporaryDirectory(prefix="tt-mem-") as results:
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(source), kind, redis_url, results],
            cwd=root, env={**os.environ, "PYTHONPATH": str(root)}, check=True,
            capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(results: list[tuple[str, dict]]) -> str:
    """Markdown: one row per (kind, size), with the growth over the process's baseline."""
    lines = ["| file | rows | rejected | rejected.jsonl lines | report examples | seconds "
             "| baseline RSS MB | peak RSS MB | growth MB |", "|---|---:|---:|---:|---:|---:|"
             "---:|---:|---:|"]
    for kind, r in results:
        lines.append(f"| {kind} | {r['rows']:,} | {r['rejected']:,} | {r['rejected_lines']:,} "
                     f"| {r['examples']} | {r['seconds']} | {r['base_mb']} | {r['peak_mb']} "
                     f"| {r['peak_mb'] - r['base_mb']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[100_000, 200_000])
    ap.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/12")
    ap.add_argument("--root", type=Path, default=ROOT, help="checkout whose producer to measure")
    ap.add_argument("--child", nargs=4, metavar=("SOURCE", "KIND", "REDIS", "RESULTS"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        src, kind, url, results = args.child
        print(json.dumps(child(Path(src), kind, url, Path(results))))
        return
    results = []
    with tempfile.TemporaryDirectory(prefix="tt-mem-src-") as tmp:
        for kind in args.kinds:
            for n in args.rows:
                src = Path(tmp) / f"{kind}-{n}.jsonl"
                write_source(src, n, kind)
                results.append((kind, measure(args.root.resolve(), src, kind, args.redis)))
                src.unlink()
                print(f"{kind} {n:,}: {results[-1][1]}", file=sys.stderr, flush=True)
    print(f"producer from {args.root.resolve()}\n")
    print(table(results))


if __name__ == "__main__":
    main()
