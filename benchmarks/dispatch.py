"""Dispatch benchmark: can the workers keep a remote LLM endpoint busy?

Drives real Celery worker processes (threads pool, one asyncio loop per process) against a fake
OpenAI-compatible endpoint in its own process that answers after a fixed latency with realistic
JSON. The ideal rate is (worker processes x per-process concurrency) / latency; the client must
never be the bottleneck. Also reports the broker overhead per headline (latency 0: producer +
Redis + Celery + result store, no LLM time).

With ``--against TREE`` (a checkout of an earlier commit, e.g. ``git worktree add
/tmp/dispatch-old <commit>``) every configuration also runs with workers started from that tree
(same venv, same Redis, same fake endpoint), the two back to back in alternating order, and the
table shows both rows and their ratio: the machine's load varies too much for figures taken at
different times to be compared.

Usage: python benchmarks/dispatch.py [--latency 0.2] [--seconds 8] [--quick]
       [--against /tmp/dispatch-old] [--configs 2x100,1x100] [--repeat 2]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
BENCH_REDIS = os.environ.get("TICKERTAG_BENCH_REDIS_URL", "redis://127.0.0.1:6379/10")
os.environ["TICKERTAG_REDIS_URL"] = BENCH_REDIS

import httpx  # noqa: E402
import redis  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from common.ledger import RunLedger  # noqa: E402
from common.services import ManagedProcess, ensure_redis, free_port, start_worker, wait_until  # noqa: E402
from common.settings import Settings  # noqa: E402
from producer.produce import Producer  # noqa: E402

LOGS = ROOT / "var" / "bench-logs"


def start_fake(latency: float) -> tuple[ManagedProcess, str]:
    port = free_port()
    p = ManagedProcess("fake-llm", [sys.executable, str(ROOT / "tests" / "fake_llm.py"), "--port",
                                    str(port), "--latency", str(latency)], LOGS / "fake-llm.log")
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: httpx.get(url + "/v1/models", timeout=2).status_code == 200, 30, "fake", p)
    return p, url


def one(n_workers: int, concurrency: int, latency: float, url: str, seconds: float,
        results_dir: Path, tree: Path = ROOT) -> dict:
    """One configuration; the workers run the code in ``tree`` (Celery imports the app from
    its working directory, so a worker started there runs that tree's modules)."""
    from common.celery_app import app

    ideal = n_workers * concurrency / latency if latency else float("inf")
    n = int(min(6000, max(400, (ideal if latency else 1000) * seconds)))
    run = f"bench-{uuid.uuid4().hex[:8]}"
    s = Settings(redis_url=BENCH_REDIS, results_dir=str(results_dir), run_id=run,
                 llm_base_url=url, llm_model="fake", concurrency=concurrency, batch_size=64,
                 max_batches_in_flight=64, response_format="llama.cpp")
    env = {"TICKERTAG_REDIS_URL": BENCH_REDIS, "TICKERTAG_RESULTS_DIR": str(results_dir),
           "TICKERTAG_LLM_BASE_URL": url, "TICKERTAG_LLM_MODEL": "fake",
           "TICKERTAG_CONCURRENCY": str(concurrency), "TICKERTAG_RESPONSE_FORMAT": "llama.cpp"}
    with contextlib.chdir(tree):
        ws = [start_worker("annotate", LOGS, concurrency=8, env=env) for _ in range(n_workers)]
    try:
        time.sleep(3)  # workers up and consuming before the clock starts
        rows = [{"title": f"Acme {run} Holdings Beats Estimates In Quarter {i}"} for i in range(n)]
        ledger = RunLedger.from_url(BENCH_REDIS, run)
        t0 = time.perf_counter()
        Producer(app, s, run).run(rows, "bench")
        t_enqueue = time.perf_counter() - t0
        done: list[tuple[float, int]] = []  # (seconds, headlines done), every 50 ms
        while ledger.in_flight() > 0:
            for w in ws:
                if not w.alive():
                    raise RuntimeError(w.tail())
            done.append((time.perf_counter() - t0, int(ledger.stats()["headlines_done"])))
            time.sleep(0.05)
        wall = time.perf_counter() - t0
        st = ledger.stats()
        assert st["headlines_done"] == n, st
    finally:
        for w in ws:
            w.stop()
    achieved = n / wall
    steady = steady_rate(done, n)
    return {"steady": steady, "steady_pct": 100 * steady / ideal if latency else None,
            # how long a request held its concurrency slot, as the worker timed it (gates,
            # HTTP round trip, parsing; not the cache write): the endpoint's latency plus
            # what the worker adds
            "call_ms": 1000 * st["llm_seconds"] / st["llm_calls"] if st["llm_calls"] else 0.0,
            "workers": n_workers, "concurrency": concurrency, "latency_ms": latency * 1000,
            "headlines": n, "wall_s": wall, "achieved": achieved,
            "ideal": ideal, "pct": 100 * achieved / ideal if latency else None,
            "enqueue_ms_per_headline": 1000 * t_enqueue / n,
            "overhead_ms_per_headline": 1000 * wall / n}


def parse_configs(text: str) -> list[tuple[int, int]]:
    """``"2x100,1x100"`` -> ``[(2, 100), (1, 100)]`` (worker processes, concurrency each)."""
    return [tuple(int(x) for x in c.split("x")) for c in text.split(",")]


def steady_rate(done: list[tuple[float, int]], n: int) -> float:
    """Headlines per second between the samples where 10% and 90% of ``n`` were done: the
    rate the workers hold once the pipeline is full, without the first round trip (nothing
    can finish before one endpoint latency has passed) or the last batches' drain, which cap
    a 4-second run's whole-run rate near 93% of ideal however fast the workers are."""
    lo = next(((t, k) for t, k in done if k >= 0.1 * n), None)
    hi = next(((t, k) for t, k in done if k >= 0.9 * n), None)
    if lo is None or hi is None or hi[0] <= lo[0]:
        return n / done[-1][0] if done else 0.0
    return (hi[1] - lo[1]) / (hi[0] - lo[0])


def compare(a: argparse.Namespace, console: Console, results_dir: Path) -> None:
    """Each configuration on the earlier tree and on this one, back to back, alternating which
    goes first; the mean of ``--repeat`` runs of each, and new / old."""
    configs = parse_configs(a.configs)
    old_tree = Path(a.against).resolve()
    runs: dict[tuple[str, int, int, float], list[dict]] = {}

    def both(w: int, c: int, latency: float, url: str, rep: int) -> None:
        order = [("old", old_tree), ("new", ROOT)]
        for name, tree in order if rep % 2 == 0 else order[::-1]:
            r = one(w, c, latency, url, a.seconds, results_dir, tree)
            runs.setdefault((name, w, c, latency), []).append(r)
            console.print(name, {k: round(v, 3) if isinstance(v, float) else v
                                 for k, v in r.items()})

    fake, url = start_fake(a.latency)
    try:
        for rep in range(a.repeat):
            for w, c in configs:
                both(w, c, a.latency, url, rep)
    finally:
        fake.stop()
    fake0, url0 = start_fake(0.0)
    try:
        for rep in range(a.repeat):
            both(1, 50, 0.0, url0, rep)
    finally:
        fake0.stop()

    def mean(name: str, w: int, c: int, latency: float, field: str) -> float:
        return statistics.fmean(r[field] for r in runs[(name, w, c, latency)])

    t = Table(title=f"dispatch, {old_tree.name} (old) vs this tree (new): fake endpoint at "
                    f"{a.latency * 1000:.0f} ms, {os.cpu_count()} cores, mean of {a.repeat}")
    for col in ("worker procs", "concurrency/proc", "ideal req/s", "old req/s", "new req/s",
                "old % of ideal", "new % of ideal", "new/old", "old steady %", "new steady %"):
        t.add_column(col, justify="right")
    for w, c in configs:
        o, n = (mean(x, w, c, a.latency, "achieved") for x in ("old", "new"))
        so, sn = (mean(x, w, c, a.latency, "steady_pct") for x in ("old", "new"))
        ideal = w * c / a.latency
        t.add_row(str(w), str(c), f"{ideal:.0f}", f"{o:.0f}", f"{n:.0f}",
                  f"{100 * o / ideal:.0f}%", f"{100 * n / ideal:.0f}%", f"{n / o:.2f}x",
                  f"{so:.0f}%", f"{sn:.0f}%")
    console.print(t)
    o, n = (mean(x, 1, 50, 0.0, "overhead_ms_per_headline") for x in ("old", "new"))
    console.print(f"overhead per headline at 0 ms latency (1 proc, concurrency 50, end to end): "
                  f"old {o:.2f} ms, new {n:.2f} ms, new/old {n / o:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--quick", action="store_true", help="fewer configurations")
    ap.add_argument("--only", help="worker procs x concurrency, comma separated (e.g. 2x100): "
                                   "these configurations instead of the default five")
    ap.add_argument("--against", help="an earlier tree to compare with (a git worktree)")
    ap.add_argument("--configs", default="2x100,1x100",
                    help="with --against: worker procs x concurrency, comma separated")
    ap.add_argument("--repeat", type=int, default=2, help="with --against: runs of each")
    a = ap.parse_args()
    console = Console()
    proc = ensure_redis(BENCH_REDIS, LOGS)
    redis.Redis.from_url(BENCH_REDIS).flushdb()
    results_dir = ROOT / "var" / "bench-runs"
    if a.against:
        try:
            compare(a, console, results_dir)
        finally:
            if proc:
                proc.stop()
        return
    configs = [(1, 20), (1, 50), (1, 100), (2, 50), (2, 100)]
    if a.quick:
        configs = [(1, 20), (2, 50)]
    if a.only:
        configs = parse_configs(a.only)
    rows = []
    fake, url = start_fake(a.latency)
    try:
        for w, c in configs:
            rows.append(one(w, c, a.latency, url, a.seconds, results_dir))
            console.print(rows[-1])
    finally:
        fake.stop()
    fake0, url0 = start_fake(0.0)
    try:
        base = one(1, 50, 0.0, url0, a.seconds, results_dir)
    finally:
        fake0.stop()
        if proc:
            proc.stop()
    t = Table(title=f"dispatch: fake endpoint at {a.latency * 1000:.0f} ms per request, "
                    f"{os.cpu_count()} cores")
    for col in ("worker procs", "concurrency/proc", "headlines", "ideal req/s", "achieved req/s",
                "% of ideal", "steady req/s", "steady % of ideal", "mean call ms",
                "enqueue ms/headline"):
        t.add_column(col, justify="right")
    for r in rows:
        t.add_row(str(r["workers"]), str(r["concurrency"]), str(r["headlines"]),
                  f"{r['ideal']:.0f}", f"{r['achieved']:.0f}", f"{r['pct']:.0f}%",
                  f"{r['steady']:.0f}", f"{r['steady_pct']:.0f}%", f"{r['call_ms']:.1f}",
                  f"{r['enqueue_ms_per_headline']:.3f}")
    console.print(t)
    console.print(f"broker + worker overhead at 0 ms latency (1 proc, concurrency 50): "
                  f"{base['achieved']:.0f} headlines/s, "
                  f"{base['overhead_ms_per_headline']:.2f} ms per headline end to end, "
                  f"{base['enqueue_ms_per_headline']:.3f} ms to enqueue")


if __name__ == "__main__":
    main()
