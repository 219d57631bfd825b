"""Serving benchmark: the compact model in bulk and over HTTP, and the LLM on the same
headlines; cost per million headlines at configurable prices.

Usage: python benchmarks/serve.py --model models/gliner-gold [--onnx models/gliner-gold-onnx]
       [--processes 2] [--llm] [--requests 300]

Rows: in-process batches of 1, 8, 32, 128 (torch, and ONNX int8 when --onnx is given); bulk
with one 1-thread process per core, as ``tickertag worker ner`` runs (the number that matters
for tagging a stream); the HTTP service with 1 and 16 concurrent clients (``--serve-workers
1 2`` for uvicorn's workers, ``--ceiling`` for the HTTP stack's rate without the model); the
local LLM.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from benchmarks.sharded import sharded_rate  # noqa: E402
from common.paths import LABELED_DIR  # noqa: E402
from common.services import ManagedProcess, free_port, start_llm_server, wait_until  # noqa: E402
from training.data import read_jsonl  # noqa: E402

LOGS = ROOT / "var" / "bench-logs"


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def bulk(model: str, texts: list[str], batch_sizes: list[int], name: str) -> list[dict]:
    """One model, one thread (as ``tickertag serve`` runs it), a row per batch size: what the
    service's model calls cost back to back."""
    from training.inference import load_tagger

    tagger = load_tagger(model, threads=1)
    tagger.predict(texts[:8])
    rows = []
    for bs in batch_sizes:
        lat = []
        n = 0
        t0 = time.perf_counter()
        for i in range(0, len(texts), bs):
            chunk = texts[i:i + bs]
            t = time.perf_counter()
            tagger.predict(chunk, None, bs)
            lat.append(time.perf_counter() - t)
            n += len(chunk)
        wall = time.perf_counter() - t0
        rows.append({"mode": f"{name}, in-process, 1 thread, batch {bs}", "headlines_per_s": n / wall,
                     "p50_ms": 1000 * pct(lat, 0.5), "p99_ms": 1000 * pct(lat, 0.99)})
    return rows


def _tag_in_batches(tagger, texts: list[str], batch: int) -> None:
    for i in range(0, len(texts), batch):
        tagger.predict(texts[i:i + batch], None, batch)


def multi_process(model: str, texts: list[str], processes: int, batch: int, name: str) -> dict:
    """Aggregate throughput of ``processes`` 1-thread taggers splitting the headlines (the
    ``ner`` queue's layout: one worker process per core)."""
    from functools import partial

    from training.inference import load_tagger

    rate = sharded_rate(partial(load_tagger, model, threads=1),
                        partial(_tag_in_batches, batch=batch), texts, processes)
    return {"mode": f"{name}, bulk, {processes} processes x 1 thread, batch {batch}",
            "headlines_per_s": rate, "p50_ms": float("nan"), "p99_ms": float("nan")}


def _on_blis(a: argparse.Namespace, texts: list[str]) -> list[dict]:
    """The bulk rows again with spaCy's products on BLIS (spawned workers inherit the
    setting), so the kernel's gain is measured in the same run as the rest."""
    from training.spacy_ops import forced_gemm

    named = [("model", a.model)]
    if a.reference:
        named.append((f"reference {Path(a.reference).name}", a.reference))
    with forced_gemm("blis"):
        return [multi_process(d, texts, a.processes, a.bulk_batch, f"{name} (blis)")
                for name, d in named]


def http_load(url: str, texts: list[str], requests: int, concurrency: int,
              per_request: int = 1, label: str = "") -> dict:
    """``concurrency`` clients, each sending ``per_request`` headlines a request and waiting
    for the answer; ``per_request`` 0 sends ``GET /healthz`` instead: the HTTP stack's own
    rate (no body, no model), a ceiling that one-headline requests cannot pass.

    The clients are aiohttp's (one keep-alive connection each): the load generator shares the
    machine with the service, and httpx's async client spent 3.7 ms of CPU a request here
    against aiohttp's 0.5-1.1, so with httpx the 16-client row measured the client."""
    import aiohttp

    lat: list[float] = []

    def call(s: aiohttp.ClientSession, i: int):
        if not per_request:
            return s.get(url + "/healthz")
        body = [texts[(i * per_request + k) % len(texts)] for k in range(per_request)]
        return s.post(url + "/v1/ner", json={"texts": body})

    async def worker(s: aiohttp.ClientSession, ids: list[int]) -> None:
        for i in ids:
            t = time.perf_counter()
            async with call(s, i) as r:
                r.raise_for_status()
                await r.read()
            lat.append(time.perf_counter() - t)

    async def main() -> float:
        conn = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=conn,
                                         timeout=aiohttp.ClientTimeout(total=60)) as s:
            async with call(s, 0) as r:
                await r.read()
            t0 = time.perf_counter()
            await asyncio.gather(*[worker(s, list(range(k, requests, concurrency)))
                                   for k in range(concurrency)])
            return time.perf_counter() - t0

    wall = asyncio.run(main())
    what = f"{per_request} headline{'s' if per_request > 1 else ''}/request" if per_request \
        else "GET /healthz (no model)"
    return {"mode": f"HTTP{label}, {what}, {concurrency} concurrent clients",
            "headlines_per_s": requests * max(per_request, 1) / wall,
            "p50_ms": 1000 * statistics.median(lat), "p99_ms": 1000 * pct(lat, 0.99)}


def http_rows(a: argparse.Namespace, served: str, texts: list[str], workers: int) -> list[dict]:
    """The HTTP rows against ``tickertag serve --workers workers``: one client, 16 clients at
    each ``--per-request``, and with ``--ceiling`` 16 clients on ``/healthz``."""
    port = free_port()
    srv = ManagedProcess("serve", [sys.executable, "-m", "tickertag", "serve", "--model", served,
                                   "--port", str(port), "--max-wait-ms", str(a.max_wait_ms),
                                   "--workers", str(workers)], LOGS / "serve.log")
    url = f"http://127.0.0.1:{port}"
    label = f" ({workers} workers)" if workers > 1 else ""
    rows = []
    try:
        wait_until(lambda: _all_ready(url, workers), 180, "serve", srv)
        rows.append(http_load(url, texts, a.requests, 1, label=label))
        for k in a.per_request:
            rows.append(http_load(url, texts, a.requests, 16, k, label=label))
        if a.ceiling:
            rows.append(http_load(url, texts, a.requests, 16, 0, label=label))
    finally:
        srv.stop()
    return rows


def _all_ready(url: str, workers: int, tries: int = 50) -> bool:
    """Whether ``workers`` distinct processes answered ``/readyz`` 200 (each try a new
    connection: the kernel hands it to whichever worker accepts first)."""
    pids = set()
    for _ in range(tries):
        r = httpx.get(url + "/readyz", timeout=2)
        if r.status_code == 200:
            pids.add(r.json().get("pid"))
        if len(pids) >= workers:
            return True
    return False


def llm_rate(texts: list[str], n: int) -> dict:
    import asyncio as aio

    from common.records import make_headline
    from common.settings import Settings
    from workers.annotate.batch import annotate_headlines

    port = free_port()
    p = start_llm_server(port, LOGS, alias="bench")
    try:
        s = Settings(llm_base_url=f"http://127.0.0.1:{port}", llm_model="bench", concurrency=2,
                     cache_ttl_s=1, request_timeout_s=300)
        hs = [make_headline({"title": f"{t} [{time.time_ns()}]"}, "b") for t in texts[:n]]
        lat = []
        t0 = time.perf_counter()
        for h in hs:
            t = time.perf_counter()
            aio.run(annotate_headlines([h], s))
            lat.append(time.perf_counter() - t)
        wall = time.perf_counter() - t0
    finally:
        p.stop()
    return {"mode": "LLM: llama.cpp SmolLM2-135M, 1 headline/request", "headlines_per_s": n / wall,
            "p50_ms": 1000 * statistics.median(lat), "p99_ms": 1000 * pct(lat, 0.99)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="model directory (tickertag train)")
    ap.add_argument("--onnx", help="its ONNX export (tickertag export-onnx), timed alongside")
    ap.add_argument("--processes", type=int, default=2, help="bulk processes (one per core)")
    ap.add_argument("--reference", help="a model timed in the same run as the speed reference "
                    "(e.g. the spaCy NER trained on gold only): rows get a ratio against its "
                    "bulk row, since machines here vary ~2x from day to day")
    ap.add_argument("--also", action="append", default=[], metavar="DIR",
                    help="another model directory whose bulk row is timed in the same run "
                         "(repeatable): e.g. the same architecture with other weights")
    ap.add_argument("--gemm-before", action="store_true",
                    help="also time the model's and the reference's bulk rows with spaCy on "
                         "thinc's bundled BLIS kernel (TICKERTAG_SPACY_GEMM=blis), the "
                         "kernel before training/spacy_ops.py")
    ap.add_argument("--serve-model", help="directory the HTTP service loads (default: --onnx "
                    "if given, else --model)")
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32, 128],
                    help="in-process batch sizes to time")
    ap.add_argument("--headlines", type=int, default=1000, help="headlines per bulk row")
    ap.add_argument("--bulk-batch", type=int, default=32, help="batch of the multi-process rows")
    ap.add_argument("--max-wait-ms", type=float, default=0.0,
                    help="the service's --max-wait-ms (0: a lone request starts at once)")
    ap.add_argument("--http-only", action="store_true", help="skip the in-process rows")
    ap.add_argument("--serve-workers", type=int, nargs="+", default=[1],
                    help="the service's --workers: a set of HTTP rows for each")
    ap.add_argument("--per-request", type=int, nargs="+", default=[1],
                    help="headlines per request of the 16-client rows, a row each")
    ap.add_argument("--ceiling", action="store_true",
                    help="also 16 clients on GET /healthz: the HTTP stack without the model")
    ap.add_argument("--llm", action="store_true", help="also time the local LLM (slow)")
    ap.add_argument("--llm-headlines", type=int, default=20)
    ap.add_argument("--cpu-price", type=float, default=0.10)
    ap.add_argument("--llm-price", type=float, default=8.0)
    a = ap.parse_args()
    texts = [r["text"] for r in read_jsonl(LABELED_DIR / "benzinga_gold_test.jsonl")]
    texts = (texts * (a.headlines // len(texts) + 1))[:a.headlines]
    from training.inference import read_manifest

    # rows are named by runtime: torch for GLiNER / SpanMarker, the kind for others (spacy, ...)
    kind = read_manifest(a.model).get("kind")
    models = {"torch" if kind in ("gliner", "spanmarker") else str(kind): a.model,
              **({"onnx int8": a.onnx} if a.onnx else {})}
    rows = []
    ref_rate = None
    if a.reference:
        ref = multi_process(a.reference, texts, a.processes, a.bulk_batch,
                            f"reference {Path(a.reference).name}")
        ref_rate = ref["headlines_per_s"]
        rows.append(ref)
    for name, d in models.items() if not a.http_only else ():
        rows += bulk(d, texts, a.batches, name)
        rows.append(multi_process(d, texts, a.processes, a.bulk_batch, name))
    for d in a.also:
        rows.append(multi_process(d, texts, a.processes, a.bulk_batch, Path(d).name))
    if a.gemm_before:
        rows += _on_blis(a, texts)
    if a.reference:  # timed again after the others: the ratio uses the mean of both runs
        ref2 = multi_process(a.reference, texts, a.processes, a.bulk_batch,
                             f"reference {Path(a.reference).name} (again)")
        rows.append(ref2)
        ref_rate = (ref_rate + ref2["headlines_per_s"]) / 2
    served = a.serve_model or a.onnx or a.model
    for workers in a.serve_workers:
        rows += http_rows(a, served, texts, workers)
    if a.llm:
        rows.append(llm_rate(texts, a.llm_headlines))
    t = Table(title=f"serving {a.model} on this machine (2 cores); HTTP rows: {served}")
    cols = ["mode", "headlines/s", "p50 ms", "p99 ms", "$ per million"]
    if ref_rate:
        cols.insert(2, "x reference")
    for c in cols:
        t.add_column(c, justify="right")
    for r in rows:
        price = a.llm_price if r["mode"].startswith("LLM") else a.cpu_price
        r["usd_per_million"] = price / (r["headlines_per_s"] * 3600) * 1e6
        cells = [r["mode"], f"{r['headlines_per_s']:.1f}", f"{r['p50_ms']:.1f}",
                 f"{r['p99_ms']:.1f}", f"{r['usd_per_million']:.3f}"]
        if ref_rate:
            cells.insert(2, f"{r['headlines_per_s'] / ref_rate:.2f}")
        t.add_row(*cells)
    Console(width=160).print(t)  # a log file, not a terminal: keep rows on one line
    best = max(r["headlines_per_s"] for r in rows if not r["mode"].startswith("LLM"))
    llm = [r for r in rows if r["mode"].startswith("LLM")]
    if llm:
        print(f"cost ratio LLM/compact per million headlines: "
              f"{llm[0]['usd_per_million'] / (a.cpu_price / (best * 3600) * 1e6):.0f}x "
              f"(LLM at ${a.llm_price}/h, compact at ${a.cpu_price}/h)")


if __name__ == "__main__":
    main()
