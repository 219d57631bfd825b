"""One-headline requests to ``tickertag serve`` alone and while large requests run.

Why: the service has one model thread. A request of 256 texts of 2,000 characters (within the
limits) once went to the model in one call and held it for 10-16 s with GLiNER, and a
one-headline request queued behind it waited as long. This script measures what a small
client sees: its latency alone, then while ``--large-clients`` clients send large requests
back to back, and the ratio of the two p99s (with the milliseconds beside it, since the ratio
alone hides whether either is small).

``--checkouts NAME=DIR ...`` runs the service of each checkout (e.g. the commit before the
per-call budget, exported with ``git archive``) on the same model and requests, one after the
other; the default is this checkout alone.

Usage::

    python benchmarks/serve_mixed.py --model models/spacy
    python benchmarks/serve_mixed.py --large-texts 64 --small-requests 60 \\
        --checkouts before=/tmp/old after=.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from benchmarks.default_model import model_or_baseline  # noqa: E402
from benchmarks.serve import LOGS, pct  # noqa: E402
from common.jsonl import iter_jsonl  # noqa: E402
from common.paths import LABELED_DIR  # noqa: E402
from common.services import ManagedProcess, free_port, wait_until  # noqa: E402


def _headlines() -> list[str]:
    return [r["text"] for r in iter_jsonl(LABELED_DIR / "benzinga_gold_test.jsonl")]


def large_request(texts: int, chars: int) -> list[str]:
    """``texts`` texts of ``chars`` characters, cut from the gold headlines joined."""
    gold = " ".join(_headlines())
    joined = (gold + " ") * (texts * chars // len(gold) + 1)
    return [joined[i * chars:(i + 1) * chars] for i in range(texts)]


async def small_latencies(c: httpx.AsyncClient, heads: list[str], n: int) -> list[float]:
    """``n`` one-headline requests, one after the other; seconds each."""
    lat = []
    for i in range(n):
        t = time.perf_counter()
        r = await c.post("/v1/ner", json={"texts": [heads[i % len(heads)]]})
        r.raise_for_status()
        lat.append(time.perf_counter() - t)
    return lat


async def measure(url: str, a: argparse.Namespace) -> dict:
    heads, large = _headlines(), large_request(a.large_texts, a.large_chars)
    async with httpx.AsyncClient(base_url=url, timeout=600) as c:
        await small_latencies(c, heads, 3)  # warm
        alone = await small_latencies(c, heads, a.small_requests)
        stop = asyncio.Event()
        large_lat: list[float] = []

        async def large_client() -> None:
            while not stop.is_set():
                t = time.perf_counter()
                r = await c.post("/v1/ner", json={"texts": large})
                r.raise_for_status()
                large_lat.append(time.perf_counter() - t)

        clients = [asyncio.create_task(large_client()) for _ in range(a.large_clients)]
        await asyncio.sleep(0.2)  # the large requests hold the model
        mixed = await small_latencies(c, heads, a.small_requests)
        stop.set()
        await asyncio.gather(*clients)
    return {"alone": alone, "mixed": mixed, "large": large_lat}


def run_checkout(root: Path, model: str, a: argparse.Namespace, max_chars: int | None = None
                 ) -> dict:
    """The service of ``root`` (its packages first on the path: ``-P`` keeps the working
    directory off it) on ``model``, measured."""
    port = free_port()
    srv = ManagedProcess("serve", [sys.executable, "-P", "-m", "tickertag", "serve", "--model",
                                   model, "--port", str(port), "--max-batch", str(a.max_batch),
                                   *(["--max-chars", str(max_chars)] if max_chars else [])],
                         LOGS / "serve_mixed.log", env={"PYTHONPATH": str(root)})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: httpx.get(url + "/readyz", timeout=2).status_code == 200, 300,
                   "serve", srv)
        return asyncio.run(measure(url, a))
    finally:
        srv.stop()


def table(runs: list[tuple[str, dict]]) -> str:
    lines = ["| checkout | small p50 alone ms | small p99 alone ms | small p50 with large ms "
             "| small p99 with large ms | p99 with large / alone | large request p50 ms "
             "| large requests |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in runs:
        ms = {k: [1000 * x for x in v] for k, v in r.items()}
        p99a, p99m = pct(ms["alone"], 0.99), pct(ms["mixed"], 0.99)
        lines.append(f"| {name} | {pct(ms['alone'], 0.5):.1f} | {p99a:.1f} "
                     f"| {pct(ms['mixed'], 0.5):.1f} | {p99m:.1f} | {p99m / p99a:.1f}x "
                     f"| {pct(ms['large'], 0.5):.0f} | {len(ms['large'])} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="a model directory (default: the spaCy baseline, "
                    "en_core_web_sm, written to a temporary directory)")
    ap.add_argument("--small-requests", type=int, default=100,
                    help="one-headline requests timed alone, and again with large ones")
    ap.add_argument("--large-texts", type=int, default=256)
    ap.add_argument("--large-chars", type=int, default=2000)
    ap.add_argument("--large-clients", type=int, default=1)
    ap.add_argument("--max-batch", type=int, default=64, help="the service's --max-batch")
    ap.add_argument("--max-chars", type=int, nargs="+", default=[None], metavar="N",
                    help="the service's --max-chars; several: one row per value, same checkout")
    ap.add_argument("--checkouts", nargs="+", default=[f"after={ROOT}"], metavar="NAME=DIR",
                    help="checkouts whose service to run, in this order")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="tt-serve-mixed-") as tmp:
        model = model_or_baseline(a.model, tmp)
        runs = []
        for name, d in (c.split("=", 1) for c in a.checkouts):
            for chars in a.max_chars:
                label = name if chars is None else f"{name}, --max-chars {chars}"
                runs.append((label, run_checkout(Path(d).resolve(), model, a, chars)))
                print(f"{label}: done", file=sys.stderr, flush=True)
    print(f"one-headline requests to tickertag serve ({model}, --max-batch {a.max_batch}), "
          f"{a.small_requests} alone and {a.small_requests} while {a.large_clients} client(s) "
          f"send {a.large_texts} x {a.large_chars}-character requests\n")
    print(table(runs))


if __name__ == "__main__":
    main()
