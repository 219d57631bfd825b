"""Soak test: the whole annotation pipeline under load and faults, with exact accounting.

Over 300 lines on purpose: a benchmark is one runnable script (harness, fault schedule,
audit, table), so ``python benchmarks/soak.py`` needs nothing else.

Real Benzinga headlines (``data/sample/benzinga_sample.csv``) are repeated with variations up to
N unique titles and written to a CSV. The producer runs as ``python -m tickertag produce`` (a
subprocess, so it can be SIGKILLed), the broker and ledger live in a Redis of our own with AOF
(``appendfsync always``) on a free port (so it can be SIGKILLed and restarted with its data), two
Celery worker processes (threads pool) annotate against the fake OpenAI-compatible endpoint in
its own process (latency drawn per request, a small random error mix, runtime ``/admin``).

The first part of the run is fault-free (the throughput baseline); then, by progress, faults are
injected: worker SIGKILLs mid-batch (one worker is killed again and again, the other lives the
whole run so its RSS shows growth or not), Redis SIGKILL + restart, producer SIGKILL + restart,
error bursts (429 / 500 / timeout / truncated JSON), slow answers past the client timeout, and a
share of headlines carry per-headline markers (schema-invalid, truncated JSON, hallucination,
one-shot 429/500/timeout). At the end the endpoint heals, ``tickertag requeue`` sends the dead
letters back and the run is audited: every source headline is exactly one result; no duplicate
result keys; the ledger invariant holds.

Usage::

    python benchmarks/soak.py                      # 100,000 headlines
    python benchmarks/soak.py --headlines 20000
    python benchmarks/soak.py --quick              # CI size: 3,000 headlines, about 1-2 minutes

``run_soak`` is also what ``tests/chaos/test_soak_quick.py`` calls.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psutil  # noqa: E402
import redis  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from common.ledger import RunLedger  # noqa: E402
from common.paths import SAMPLE_CSV  # noqa: E402
from common.records import InvalidRecord, make_headline  # noqa: E402
from common.services import (  # noqa: E402
    ManagedProcess,
    free_port,
    redis_server_binary,
    start_worker,
    wait_until,
)
from common.store import ResultStore  # noqa: E402

RESULTS_MD = ROOT / "benchmarks" / "RESULTS_soak.md"
# per-headline fault markers understood by tests/fake_llm.py; one in MARK_EVERY titles gets one;
# "#500x3" fails every attempt of the first pass (a sure dead letter) and succeeds when requeued
MARKERS = ("#schema", "#badjson", "#halluc", "#429x1", "#500x1", "#timeoutx1", "#500x3")
MARK_EVERY = 97
PREFIXES = ("", "UPDATE: ", "BREAKING: ", "Mid-Day: ", "Pre-Market: ", "After-Hours: ",
            "Reuters: ", "Analyst: ", "Report: ", "Watch: ")


@dataclass
class SoakConfig:
    """Size, pace and fault schedule of one soak run (``quick()`` is the CI-sized one)."""

    headlines: int = 100_000
    workers: int = 2
    threads: int = 4  # Celery threads per worker process (batches run at once)
    concurrency: int = 32  # in-flight LLM requests per worker process
    batch_size: int = 50
    max_batches_in_flight: int = 24
    latency: tuple[float, float] = (0.05, 0.2)  # per-request latency, uniform
    error_rate: float = 0.02  # random 429 / 500 / timeout / truncated JSON while faults are on
    request_timeout_s: float = 1.0
    slow_s: float = 2.5  # a "timeout" fault answers after this (> request_timeout_s)
    max_retries: int = 2
    visibility_timeout_s: int = 30
    # workers look for batches the broker lost (popped by a worker SIGKILLed before the message
    # reached ``unacked``) this often; a lost batch is sent again after two sweeps
    lost_batch_sweep_s: float = 5.0
    clean_share: float = 0.15  # the first share of the run is fault-free (throughput baseline)
    burst_s: float = 4.0  # length of an error / slow burst
    max_seconds: float = 1500.0  # hard bound on the whole run
    seed: int = 7
    work_dir: Path = ROOT / "var" / "soak"
    keep: bool = False  # keep the run directory (results, logs, AOF) afterwards

    @classmethod
    def quick(cls, **over: Any) -> SoakConfig:
        base: dict[str, Any] = dict(headlines=3000, burst_s=2.5, visibility_timeout_s=20,
                                    max_seconds=400.0)
        base.update(over)
        return cls(**base)

    def schedule(self) -> list[tuple[float, str]]:
        """(progress, fault) pairs; progress = finished headlines / N. Worker 0 is the one that
        gets killed; worker 1 runs throughout (its RSS is the growth check)."""
        c = self.clean_share
        steps = ["error_rate_on", "kill_worker", "kill_producer", "error_burst", "kill_redis",
                 "kill_worker", "slow_burst", "error_burst", "kill_redis", "kill_worker"]
        span = 0.90 - c
        return [(c + span * i / len(steps), s) for i, s in enumerate(steps)]


@dataclass
class SoakResult:
    """Everything measured by one run; ``ok`` is the verdict the test asserts on."""

    run_id: str
    headlines: int
    source_rows: int
    results: int = 0
    unique_result_keys: int = 0
    duplicates: int = 0
    lost: int = 0
    dead_before_requeue: int = 0
    dead_batches_before_requeue: int = 0
    requeued: int = 0
    dead_after_requeue: int = 0
    invalid_answers: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    endpoint_faults: dict[str, int] = field(default_factory=dict)
    batches_interrupted_by_worker_kills: int = 0
    producer_restarts: int = 0
    producer_resent_pending: int = 0
    clean_headlines: int = 0
    clean_seconds: float = 0.0
    fault_headlines: int = 0
    fault_seconds: float = 0.0
    total_seconds: float = 0.0
    requeue_seconds: float = 0.0
    redis_peak_bytes: int = 0
    worker_rss: dict[str, dict[str, float]] = field(default_factory=dict)
    ledger: dict[str, float] = field(default_factory=dict)
    ledger_invariant: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def clean_rate(self) -> float:
        return self.clean_headlines / self.clean_seconds if self.clean_seconds else 0.0

    @property
    def fault_rate(self) -> float:
        return self.fault_headlines / self.fault_seconds if self.fault_seconds else 0.0

    @property
    def ok(self) -> bool:
        return (self.lost == 0 and self.duplicates == 0 and self.dead_after_requeue == 0
                and self.results == self.headlines and self.ledger_invariant)


# -- source ----------------------------------------------------------------------------------
def build_source(path: Path, n: int, seed: int = 7) -> list[str]:
    """Write N unique headlines (sample titles with variations, 1/97 with a fault marker) as a
    CSV; returns the headline ids the producer must account for (as ``make_headline`` makes them).
    """
    with open(SAMPLE_CSV, newline="", encoding="utf-8") as f:
        sample = [r for r in csv.DictReader(f) if r.get("title", "").strip()]
    rng = random.Random(seed)
    ids: list[str] = []
    seen: set[str] = set()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["date", "title", "stock_symbol"])
        k = 0
        while len(ids) < n:
            for row in sample:
                if len(ids) >= n:
                    break
                title = PREFIXES[k % len(PREFIXES)] + row["title"]
                if k >= len(PREFIXES):
                    title += f" ({k // len(PREFIXES)})"
                if rng.random() < 1 / MARK_EVERY:
                    title += " " + rng.choice(MARKERS)
                rec = {"title": title, "date": row["date"], "stock_symbol": row["stock_symbol"]}
                try:
                    h = make_headline(rec, "soak")
                except InvalidRecord:
                    continue
                if h.id in seen:
                    continue
                seen.add(h.id)
                ids.append(h.id)
                w.writerow([row["date"], title, row["stock_symbol"]])
            k += 1
    return ids


# -- processes -------------------------------------------------------------------------------
class SoakRedis:
    """Our own Redis with AOF, so a SIGKILL + restart keeps the queue and the ledger."""

    def __init__(self, base: Path) -> None:
        self.port = free_port()
        self.data = base / "redis-data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.log = base / "logs" / "redis.log"
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.argv = [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
                     "--dir", str(self.data), "--appendonly", "yes", "--appendfsync", "always",
                     "--save", ""]
        self.proc = self._up()

    def _up(self) -> ManagedProcess:
        p = ManagedProcess("redis", self.argv, self.log)
        wait_until(lambda: redis.Redis.from_url(self.url).ping(), 30, "redis", p)
        return p

    def restart_after_crash(self, down_s: float = 1.0) -> None:
        self.proc.kill()
        time.sleep(down_s)
        self.proc = self._up()

    def restart_after_shutdown(self, down_s: float = 1.0) -> None:
        """A clean stop (SIGTERM: Redis flushes its AOF and exits, as a service restart or an
        upgrade does), then the same server again on the same port and data directory."""
        self.proc.stop(timeout=30)
        time.sleep(down_s)
        self.proc = self._up()

    def stop(self) -> None:
        self.proc.stop()


def start_fake(cfg: SoakConfig, logs: Path) -> tuple[ManagedProcess, str]:
    """The fault-injecting endpoint in its own process (its event loop must not share our GIL)."""
    port = free_port()
    argv = [sys.executable, str(ROOT / "tests" / "fake_llm.py"), "--port", str(port),
            "--latency", str(cfg.latency[0]), "--latency-max", str(cfg.latency[1]),
            "--error-rate", "0", "--slow-s", str(cfg.slow_s)]
    p = ManagedProcess("fake-llm", argv, logs / "fake-llm.log")
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: httpx.get(url + "/v1/models", timeout=2).status_code == 200, 30, "fake", p)
    return p, url


def admin(url: str, **body: float) -> dict[str, Any]:
    """Change (POST) or read (no arguments) the fake endpoint's behaviour."""
    if body:
        return httpx.post(url + "/admin", json=body, timeout=10).json()
    return httpx.get(url + "/admin", timeout=10).json()


_TASK_EVT = re.compile(r"Task tickertag\.annotate\.batch\[([0-9a-f-]+)\] (received|succeeded|retry)")


def running_batches(log: Path) -> int:
    """Batches a worker has received and not yet finished, from its log (proof of "mid-batch")."""
    received: set[str] = set()
    ended: set[str] = set()
    for tid, what in _TASK_EVT.findall(log.read_text(errors="replace")):
        (received if what == "received" else ended).add(tid)
    return len(received - ended)


class Sampler(threading.Thread):
    """Samples Redis memory and worker RSS every second, from a side thread."""

    def __init__(self, redis_url: Callable[[], str], workers: Callable[[], list[ManagedProcess]]
                 ) -> None:
        super().__init__(daemon=True)
        self.redis_url, self.workers = redis_url, workers
        self.redis_peak = 0
        self.rss: dict[int, list[tuple[float, int]]] = {}
        self.stop_evt = threading.Event()

    def run(self) -> None:
        while not self.stop_evt.wait(1.0):
            try:
                info = redis.Redis.from_url(self.redis_url(), socket_timeout=2).info("memory")
                self.redis_peak = max(self.redis_peak, int(info["used_memory"]),
                                      int(info.get("used_memory_peak", 0)))
            except (redis.RedisError, OSError):
                pass  # Redis is being restarted
            for w in self.workers():
                try:
                    rss = psutil.Process(w.pid).memory_info().rss
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                self.rss.setdefault(w.pid, []).append((time.monotonic(), rss))


# -- the run ---------------------------------------------------------------------------------
def run_soak(cfg: SoakConfig, log: Callable[[str], None] = print) -> SoakResult:
    """One soak run; returns what was measured (raises only if the harness itself breaks)."""
    run_id = f"soak-{uuid.uuid4().hex[:8]}"
    base = cfg.work_dir / run_id
    logs = base / "logs"
    src = base / "headlines.csv"
    expected = build_source(src, cfg.headlines, cfg.seed)
    res = SoakResult(run_id=run_id, headlines=len(expected), source_rows=len(expected))
    log(f"soak {run_id}: {len(expected)} headlines in {src}")

    procs: dict[str, Any] = {}
    rds = SoakRedis(base)
    procs["redis"] = rds
    fake, fake_url = start_fake(cfg, logs)
    procs["fake"] = fake
    env = {
        "TICKERTAG_REDIS_URL": rds.url, "TICKERTAG_RESULTS_DIR": str(base / "runs"),
        "TICKERTAG_RUN_ID": run_id, "TICKERTAG_LLM_BASE_URL": fake_url,
        "TICKERTAG_LLM_MODEL": "fake", "TICKERTAG_RESPONSE_FORMAT": "llama.cpp",
        "TICKERTAG_MAX_RETRIES": str(cfg.max_retries), "TICKERTAG_BACKOFF_BASE_S": "0.1",
        "TICKERTAG_BACKOFF_MAX_S": "1.0", "TICKERTAG_REQUEST_TIMEOUT_S": str(cfg.request_timeout_s),
        "TICKERTAG_VISIBILITY_TIMEOUT_S": str(cfg.visibility_timeout_s),
        "TICKERTAG_LOST_BATCH_SWEEP_S": str(cfg.lost_batch_sweep_s),
        "TICKERTAG_CONCURRENCY": str(cfg.concurrency), "TICKERTAG_BATCH_SIZE": str(cfg.batch_size),
        "TICKERTAG_MAX_BATCHES_IN_FLIGHT": str(cfg.max_batches_in_flight),
        "TICKERTAG_AUTO_CURATE": "false", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false", "COLUMNS": "200",  # rich: no wrapped log lines
    }
    workers: list[ManagedProcess] = []

    def new_worker(i: int) -> ManagedProcess:
        return start_worker("annotate", logs, concurrency=cfg.threads, env=env,
                            name=f"soak{i}-{time.monotonic_ns() % 10**6}@%h")

    def new_producer() -> ManagedProcess:
        return ManagedProcess("producer", [sys.executable, "-m", "tickertag", "produce", str(src),
                                           "--run", run_id], logs / "producer.log", env=env)

    sampler = Sampler(lambda: rds.url, lambda: list(workers))
    ledger = RunLedger.from_url(rds.url, run_id)
    store = ResultStore(str(base / "runs"), run_id)
    deadline = time.monotonic() + cfg.max_seconds
    producer: ManagedProcess | None = None
    try:
        workers.extend(new_worker(i) for i in range(cfg.workers))
        for w in workers:  # consuming before the clock starts
            wait_until(lambda w=w: "ready." in w.tail(4000), 90, "worker", w)
        sampler.start()
        t0 = time.monotonic()
        producer = new_producer()
        schedule = cfg.schedule()
        t_fault: float | None = None
        done_at_fault = 0

        def progress() -> tuple[int, dict[str, float]]:
            st = ledger.stats()
            return int(st["headlines_done"] + st["headlines_dead"]), st

        def check_alive() -> None:
            nonlocal producer
            if time.monotonic() > deadline:
                raise TimeoutError(f"soak over {cfg.max_seconds:.0f}s: {ledger.stats()}")
            for i, w in enumerate(workers):
                if not w.alive():
                    res.notes.append(f"worker {i} died unplanned (rc {w.proc.returncode})")
                    workers[i] = new_worker(i)
            if producer is not None and not producer.alive() and producer.proc.returncode != 0:
                res.notes.append(f"producer exited rc {producer.proc.returncode}; restarted")
                res.producer_restarts += 1
                producer = new_producer()

        idle_since: list[float] = []

        def stuck() -> bool:
            """Batches counted in flight, yet no message anywhere in the broker (queue or
            unacked) for longer than a redelivery and two lost-batch sweeps take: they are lost.
            End the run and let the audit count them instead of waiting for the deadline."""
            try:
                r = redis.Redis.from_url(rds.url, socket_timeout=5)
                idle = ledger.in_flight() > 0 and not r.llen("annotate") and not r.hlen("unacked")
            except redis.RedisError:
                return False
            if not idle:
                idle_since.clear()
                return False
            idle_since[:] = idle_since or [time.monotonic()]
            if time.monotonic() - idle_since[0] < 2 * cfg.visibility_timeout_s + 15:
                return False
            res.notes.append(f"{ledger.in_flight()} batch(es) counted in flight but in no queue "
                             "and not unacked: lost by the pipeline")
            return True

        while True:
            try:
                n_done, st = progress()
            except redis.RedisError:
                time.sleep(0.5)
                continue
            check_alive()
            p = n_done / len(expected)
            while schedule and p >= schedule[0][0]:
                _, fault = schedule.pop(0)
                if t_fault is None:
                    t_fault, done_at_fault = time.monotonic(), int(st["headlines_done"])
                    res.clean_headlines, res.clean_seconds = done_at_fault, t_fault - t0
                log(f"  {p:6.1%} {fault}")
                res.faults[fault] = res.faults.get(fault, 0) + 1
                if fault == "error_rate_on":
                    admin(fake_url, error_rate=cfg.error_rate)
                elif fault == "kill_worker":
                    time.sleep(0.3)
                    res.batches_interrupted_by_worker_kills += running_batches(workers[0].log_path)
                    workers[0].kill()
                    workers[0] = new_worker(0)
                elif fault == "kill_producer":
                    if producer is not None and producer.alive():
                        producer.kill()
                        producer = new_producer()
                        res.producer_restarts += 1
                    else:
                        res.notes.append("producer had finished before its scheduled kill")
                elif fault in ("error_burst", "slow_burst"):
                    if fault == "error_burst":
                        admin(fake_url, error_rate=1.0)
                    else:
                        admin(fake_url, latency=cfg.request_timeout_s * 1.5,
                              latency_max=cfg.request_timeout_s * 2)
                    time.sleep(cfg.burst_s)
                    admin(fake_url, error_rate=cfg.error_rate, latency=cfg.latency[0],
                          latency_max=cfg.latency[1])
                elif fault == "kill_redis":
                    rds.restart_after_crash()
            produced = producer is not None and not producer.alive() and producer.proc.returncode == 0
            if produced and not schedule and n_done >= len(expected) and ledger.in_flight() == 0:
                break
            if produced and n_done >= len(expected) and ledger.in_flight() == 0 and schedule:
                res.notes.append(f"run finished before faults {[f for _, f in schedule]}")
                break
            if produced and stuck():
                break
            time.sleep(0.25)
        t_end = time.monotonic()
        _, st = progress()
        res.fault_headlines = int(st["headlines_done"]) - done_at_fault
        res.fault_seconds = t_end - (t_fault or t0)
        dead = list(store.iter_dead())
        res.dead_batches_before_requeue = len(dead)
        res.dead_before_requeue = sum(len(d["headlines"]) for d in dead)
        res.producer_resent_pending = sum(
            int(m) for m in re.findall(r"re-sent\s+(\d+)\s+pending", producer.tail(10**6)))
        log(f"  done in {t_end - t0:.0f}s; {res.dead_before_requeue} headlines dead-lettered; "
            "healing the endpoint and requeueing")

        # the dead-letter round trip: heal, requeue through the CLI, wait
        admin(fake_url, error_rate=0.0)
        t_rq = time.monotonic()
        rq = ManagedProcess("requeue", [sys.executable, "-m", "tickertag", "requeue", "--run",
                                        run_id], logs / "requeue.log", env=env)
        rq.proc.wait(120)
        rq.stop()
        m = re.search(r"requeued (\d+) headlines", rq.tail())
        res.requeued = int(m.group(1)) if m else -1
        while ledger.in_flight() > 0 and not stuck():
            check_alive()
            time.sleep(0.25)
        res.requeue_seconds = time.monotonic() - t_rq
        res.total_seconds = time.monotonic() - t0
        res.endpoint_faults = admin(fake_url).get("faults", {})
    finally:
        sampler.stop_evt.set()
        if producer is not None:
            producer.stop()
        for w in workers:
            w.stop()
        fake.stop()
        rds_final = procs.get("redis")
        if rds_final is not None and rds_final.proc.alive():
            try:
                res.ledger = ledger.stats()
            except redis.RedisError:
                pass
        if rds_final is not None:
            rds_final.stop()

    # -- the audit: durable store against the source ---------------------------------------
    results = list(store.iter_results())
    keys = [r["key"] for r in results]
    res.results = len(results)
    res.unique_result_keys = len(set(keys))
    res.duplicates = len(keys) - len(set(keys))
    res.invalid_answers = sum(1 for r in results if not r["valid"])
    dead_ids = [h["id"] for d in store.iter_dead() for h in d["headlines"]]
    res.dead_after_requeue = len(dead_ids)
    have = {r["id"] for r in results} | set(dead_ids)
    res.lost = len(set(expected) - have)
    extra = have - set(expected)
    if extra:
        res.notes.append(f"{len(extra)} result ids not in the source")
    lg = res.ledger
    res.ledger_invariant = bool(lg) and (
        lg["headlines_enqueued"] == len(expected) == lg["headlines_done"] + lg["headlines_dead"])
    res.redis_peak_bytes = sampler.redis_peak
    for pid, samples in sampler.rss.items():
        mib = [s / 2**20 for _, s in samples]
        if len(mib) < 3:
            continue
        warm = mib[min(len(mib) - 1, max(1, len(mib) // 10))]  # after imports and first batches
        res.worker_rss[str(pid)] = {"seconds": round(samples[-1][0] - samples[0][0], 1),
                                    "start_mib": round(mib[0], 1), "warm_mib": round(warm, 1),
                                    "end_mib": round(mib[-1], 1), "max_mib": round(max(mib), 1),
                                    # RSS at each tenth of its life: growth or plateau?
                                    "deciles_mib": [round(mib[min(len(mib) - 1, len(mib) * i // 10)])
                                                    for i in range(1, 11)]}
    if not cfg.keep:
        shutil.rmtree(base, ignore_errors=True)
    return res


# -- reporting -------------------------------------------------------------------------------
def table(res: SoakResult, title: str) -> Table:
    t = Table(title=title)
    t.add_column("measure")
    t.add_column("value", justify="right")
    for k, v in rows(res):
        t.add_row(k, v)
    return t


def rows(res: SoakResult) -> list[tuple[str, str]]:
    longest = max(res.worker_rss.values(), key=lambda r: r["seconds"], default=None)
    out = [
        ("headlines (unique, from source)", f"{res.headlines:,}"),
        ("results (one per headline)", f"{res.results:,}"),
        ("headlines lost", str(res.lost)),
        ("duplicate result keys", str(res.duplicates)),
        ("dead-lettered during faults (headlines / batches)",
         f"{res.dead_before_requeue} / {res.dead_batches_before_requeue}"),
        ("requeued and recovered", f"{res.requeued} (dead after: {res.dead_after_requeue})"),
        ("invalid LLM answers kept with raw text", str(res.invalid_answers)),
        ("ledger: enqueued = done + dead", "yes" if res.ledger_invariant else "NO"),
        ("throughput fault-free (headlines/s)",
         f"{res.clean_rate:.0f}  ({res.clean_headlines:,} in {res.clean_seconds:.0f}s)"),
        ("throughput with faults (headlines/s)",
         f"{res.fault_rate:.0f}  ({res.fault_headlines:,} in {res.fault_seconds:.0f}s)"),
        ("wall time incl. requeue", f"{res.total_seconds:.0f}s (requeue {res.requeue_seconds:.0f}s)"),
        ("Redis used_memory peak", f"{res.redis_peak_bytes / 2**20:.1f} MiB"),
    ]
    if longest:
        out.append(("RSS of the never-killed worker (start / warm / end / max)",
                    f"{longest['start_mib']:.0f} / {longest['warm_mib']:.0f} / "
                    f"{longest['end_mib']:.0f} / {longest['max_mib']:.0f} MiB over "
                    f"{longest['seconds']:.0f}s"))
    out.append(("faults injected (scheduled)",
                ", ".join(f"{k} x{v}" for k, v in sorted(res.faults.items()))))
    out.append(("endpoint faults served (by kind)",
                ", ".join(f"{k} {v}" for k, v in sorted(res.endpoint_faults.items()))))
    out.append(("batches running in killed workers", str(res.batches_interrupted_by_worker_kills)))
    out.append(("batches the broker lost, sent again by the workers' sweep",
                str(int(res.ledger.get("resent_lost", 0)) if res.ledger else "?")))
    out.append(("producer restarts / pending batches re-sent",
                f"{res.producer_restarts} / {res.producer_resent_pending} headlines"))
    return out


def write_markdown(res: SoakResult, cfg: SoakConfig, command: str, path: Path) -> None:
    lines = [
        "# Soak test: load and faults", "",
        f"Command: `{command}`", "",
        f"Machine: {os.cpu_count()} CPU cores (shared with other jobs), Python "
        f"{sys.version.split()[0]}; fake endpoint latency {cfg.latency[0] * 1000:.0f}-"
        f"{cfg.latency[1] * 1000:.0f} ms, random error rate {cfg.error_rate:.0%} once faults are "
        f"on; {cfg.workers} worker processes x {cfg.threads} threads, {cfg.concurrency} requests "
        f"in flight per process, batches of {cfg.batch_size}; request timeout "
        f"{cfg.request_timeout_s:g}s, {cfg.max_retries} retries; visibility timeout "
        f"{cfg.visibility_timeout_s}s; Redis AOF appendfsync always.", "",
        f"Verdict: **{'PASS' if res.ok else 'FAIL'}** (zero lost, zero duplicates, every dead "
        "letter recovered, ledger invariant).", "",
        "| measure | value |", "|---|---|",
        *[f"| {k} | {v} |" for k, v in rows(res)], "",
        "Fault schedule (by progress = finished headlines / N): "
        + ", ".join(f"{p:.0%} {f}" for p, f in cfg.schedule()) + ". The first "
        f"{cfg.clean_share:.0%} is fault-free and gives the fault-free throughput; the fault "
        "throughput runs from the first fault to the last headline finished, so it includes "
        "the wait for batches of killed workers to come back after the visibility timeout.", "",
        "Worker RSS per process (MiB; `warm` = after the first tenth of its life):", "",
        "| pid | seconds alive | start | warm | end | max | at each tenth of its life |",
        "|---|---|---|---|---|---|---|",
        *[f"| {pid} | {r['seconds']:.0f} | {r['start_mib']:.0f} | {r['warm_mib']:.0f} | "
          f"{r['end_mib']:.0f} | {r['max_mib']:.0f} | {' '.join(map(str, r['deciles_mib']))} |"
          for pid, r in res.worker_rss.items()], "",
    ]
    if res.notes:
        lines += ["Notes:", "", *[f"- {n}" for n in res.notes], ""]
    lines += ["Raw numbers:", "", "```json",
              json.dumps({k: v for k, v in asdict(res).items() if k != "worker_rss"}, indent=1,
                         default=str), "```", ""]
    path.write_text("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--headlines", type=int, default=None, help="unique headlines (default 100000)")
    ap.add_argument("--quick", action="store_true", help="CI size: 3000 headlines, < 3 minutes")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--max-seconds", type=float, default=None)
    ap.add_argument("--keep", action="store_true", help="keep results, logs and AOF in var/soak/")
    ap.add_argument("--out", type=Path, default=RESULTS_MD, help="markdown report ('-': none)")
    a = ap.parse_args()
    over: dict[str, Any] = {"workers": a.workers, "keep": a.keep}
    if a.headlines:
        over["headlines"] = a.headlines
    if a.max_seconds:
        over["max_seconds"] = a.max_seconds
    cfg = SoakConfig.quick(**over) if a.quick else SoakConfig(**over)
    console = Console()
    res = run_soak(cfg, log=console.print)
    console.print(table(res, f"soak {res.run_id}: {res.headlines:,} headlines"))
    for n in res.notes:
        console.print(f"[yellow]note[/] {n}")
    if str(a.out) != "-":
        command = "python benchmarks/soak.py " + " ".join(sys.argv[1:])
        write_markdown(res, cfg, command.strip(), a.out)
        console.print(f"wrote {a.out}")
    console.print("[bold green]PASS" if res.ok else "[bold red]FAIL")
    sys.exit(0 if res.ok else 1)


if __name__ == "__main__":
    main()
