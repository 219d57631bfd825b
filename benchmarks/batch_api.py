"""Batch API benchmark: the annotate stage in batch mode against online mode, in one run, on the
same local chat server.

Both modes run the product's whole path (producer, Redis, one Celery worker process, the
annotate task, grammar, parsing, alignment, cache, result store) over the same headlines of the
bundled recording, each run with a model name of its own so neither answers from the other's
cache. The chat server is the replay server (``cascade.replay``: recorded answers, tokens
estimated as characters / 4); batch mode reaches it through the local Batch API server
(``common.batch_server``), online mode directly. Cost is at the per-token prices
(``TICKERTAG_PRICE_*_PER_MTOK``), batch tokens at ``TICKERTAG_BATCH_DISCOUNT`` times them.

What the speed figure means: a local batch server starts work at once, so batch headlines/s
here is the Batch API's overhead (upload, create, poll every ``--poll-s``, download) over the
same upstream; a provider answers within its completion window (up to 24 h), so batch mode
trades latency for price, never speed for price.

Usage: python benchmarks/batch_api.py [--headlines 1000] [--poll-s 1] [--upstream URL]
(writes ``benchmarks/batch_api.json``, where the README's figures come from)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_REDIS = os.environ.get("TICKERTAG_BENCH_REDIS_URL", "redis://127.0.0.1:6379/10")
os.environ["TICKERTAG_REDIS_URL"] = BENCH_REDIS

import redis  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from benchmarks.recorded import commit, today  # noqa: E402
from cascade.replay import RECORDING, Recording, start_replay_server  # noqa: E402
from common.batch_server import start_batch_server  # noqa: E402
from common.ledger import RunLedger  # noqa: E402
from common.services import ensure_redis, free_port, start_worker  # noqa: E402
from common.settings import Settings  # noqa: E402
from common.summary import run_token_cost_usd  # noqa: E402
from producer.produce import Producer  # noqa: E402

LOGS = ROOT / "var" / "bench-logs"
OUT = ROOT / "benchmarks" / "batch_api.json"  # the README's figures (tests/test_readme_figures.py)


def one(mode: str, rows: list[dict], url: str, a: argparse.Namespace, results_dir: Path) -> dict:
    """One run of ``rows`` in ``mode`` through a fresh worker; its rate, tokens and cost."""
    from common.celery_app import app

    run = f"bench-{mode}-{uuid.uuid4().hex[:8]}"
    s = Settings(redis_url=BENCH_REDIS, results_dir=str(results_dir), run_id=run,
                 llm_base_url=url, llm_model=run, llm_mode=mode, batch_size=a.batch_size,
                 batch_poll_s=a.poll_s, concurrency=32, max_batches_in_flight=64,
                 response_format="llama.cpp")
    env = {"TICKERTAG_REDIS_URL": BENCH_REDIS, "TICKERTAG_RESULTS_DIR": str(results_dir),
           "TICKERTAG_LLM_BASE_URL": url, "TICKERTAG_LLM_MODEL": run,
           "TICKERTAG_CONCURRENCY": "32", "TICKERTAG_RESPONSE_FORMAT": "llama.cpp",
           "TICKERTAG_BATCH_POLL_S": str(a.poll_s), "TICKERTAG_AUTO_CURATE": "false"}
    w = start_worker("annotate", LOGS, concurrency=a.tasks, env=env)
    try:
        time.sleep(3)  # the worker up and consuming before the clock starts
        ledger = RunLedger.from_url(BENCH_REDIS, run)
        t0 = time.perf_counter()
        Producer(app, s, run).run(rows, "bench")
        while ledger.in_flight() > 0:
            if not w.alive():
                raise RuntimeError(w.tail())
            time.sleep(0.05)
        wall = time.perf_counter() - t0
        st = ledger.stats()
    finally:
        w.stop()
    done = int(st["headlines_done"])
    assert done + int(st["headlines_dead"]) == len(rows), st
    usd = run_token_cost_usd(st, s)
    return {"mode": mode, "headlines": done, "dead": int(st["headlines_dead"]), "wall_s": wall,
            "per_s": done / wall, "prompt_tokens": int(st["prompt_tokens"]),
            "completion_tokens": int(st["completion_tokens"]),
            "batch_tokens": int(st.get("batch_prompt_tokens", 0)
                                + st.get("batch_completion_tokens", 0)),
            "usd": usd, "usd_per_million": usd / done * 1e6 if done else None,
            "remote_batches": int(st.get("batches_finished", 0)) if mode == "batch" else 0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--headlines", type=int, default=1000, help="from the bundled recording")
    ap.add_argument("--batch-size", type=int, default=128, help="headlines per task = per "
                    "remote batch")
    ap.add_argument("--tasks", type=int, default=4, help="tasks a worker runs at once")
    ap.add_argument("--poll-s", type=float, default=1.0, help="TICKERTAG_BATCH_POLL_S")
    ap.add_argument("--upstream", default=None, help="chat server (default: the replay server "
                    "over the bundled recording)")
    a = ap.parse_args()
    console = Console(width=200)  # the whole table, also when piped
    redis_proc = ensure_redis(BENCH_REDIS, LOGS)
    redis.Redis.from_url(BENCH_REDIS).flushdb()
    results_dir = ROOT / "var" / "bench-runs"
    rec = Recording.load(RECORDING)
    rows = [{"title": r["text"]} for r in list(rec.rows.values())[:a.headlines]]
    procs = []
    try:
        upstream = a.upstream
        if upstream is None:
            port = free_port()
            procs.append(start_replay_server(RECORDING, port, LOGS))
            upstream = f"http://127.0.0.1:{port}"
        bport = free_port()
        procs.append(start_batch_server(upstream, bport, LOGS))
        online = one("online", rows, upstream, a, results_dir)
        batch = one("batch", rows, f"http://127.0.0.1:{bport}", a, results_dir)
    finally:
        for p in procs:
            p.stop()
        if redis_proc:
            redis_proc.stop()
    s = Settings()
    t = Table(title=f"annotate: online vs provider Batch API, {len(rows)} headlines, same chat "
                    f"server ({'replay' if a.upstream is None else a.upstream}), "
                    f"{os.cpu_count()} cores")
    for col in ("mode", "headlines", "dead", "wall s", "headlines/s", "x online", "tokens",
                "at batch price", "$", "$ per million headlines", "x online $"):
        t.add_column(col, justify="right")
    for r in (online, batch):
        t.add_row(r["mode"], str(r["headlines"]), str(r["dead"]), f"{r['wall_s']:.1f}",
                  f"{r['per_s']:.1f}", f"{r['per_s'] / online['per_s']:.2f}",
                  f"{r['prompt_tokens'] + r['completion_tokens']:,}", f"{r['batch_tokens']:,}",
                  f"{r['usd']:.4f}", f"{r['usd_per_million']:.2f}",
                  f"{r['usd_per_million'] / online['usd_per_million']:.2f}")
    console.print(t)
    OUT.write_text(json.dumps({
        "date": today(), "commit": commit(),
        "command": "python benchmarks/batch_api.py " + " ".join(sys.argv[1:]),
        "headlines": len(rows), "batch_size": a.batch_size, "poll_s": a.poll_s,
        "upstream": "replay" if a.upstream is None else a.upstream,
        "batch_discount": s.batch_discount, "cores": os.cpu_count(),
        "rows": [{k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()}
                 for r in (online, batch)]}, indent=1) + "\n")
    console.print(f"prices: ${s.price_input_per_mtok:g} / ${s.price_output_per_mtok:g} per million "
                  f"tokens, batch x{s.batch_discount:g}; {batch['remote_batches']} remote batches "
                  f"of up to {a.batch_size}, polled every {a.poll_s:g} s")


if __name__ == "__main__":
    main()
