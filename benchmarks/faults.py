"""Fault scenarios, one at a time, each with its own Redis, endpoint and workers, audited to the
headline: the faults that ``benchmarks/soak.py`` (kills and endpoint errors at
volume) does not make.

Over 300 lines on purpose: a benchmark is one runnable script (harness, scenarios, table),
so ``python benchmarks/faults.py`` needs nothing else.

1. ``visibility``: batches outlive the broker's visibility timeout (5.6 s of work, 2 s timeout),
   so Redis hands a second copy to the other worker while the first still runs.
2. ``store``: the result store's disk fills up for a while (a real ``ENOSPC``: the results live
   on a small tmpfs that a ballast file fills, then frees; needs root to mount).
3. ``redis-tag``: Redis is SIGKILLed and restarted (AOF) twice during a ``tickertag tag`` run on
   the ``ner`` queue.
4. ``poison``: one batch segfaults its worker every time it runs (``benchmarks/crashy_worker.py``
   stands in for a crashing native library); workers are restarted as a supervisor would. After
   ``max_deliveries`` the batch is dead-lettered as ``worker_lost``; with the "library fixed"
   (plain workers), ``tickertag requeue`` recovers it.
5. ``train-kill``: a ``train`` worker is SIGKILLed mid-training; the run shows ``dead`` once its
   lock lapses, and a resubmission resumes from the last epoch checkpoint.
6. ``two-producers``: two ``tickertag produce`` started at once on one run, their files sharing
   half their headlines (the second reads its file backwards, so its batches mix headlines the
   first already claimed with new ones); the ledger must count the batches really sent and the
   run must finalize once.
7. ``redis-restart``: Redis is shut down (SHUTDOWN: AOF flushed, as a service restart or an
   upgrade does) while slow batches are in flight, and started again on the same port and data
   directory; the table reports how long the pipeline took to recover.

Every headline must end as exactly one result or one dead letter (lost = neither, duplicated =
more than one result or both).

Usage::

    python benchmarks/faults.py                 # all seven, the sizes in the README
    python benchmarks/faults.py --quick         # CI size (tests/chaos/test_faults_bench.py)
    python benchmarks/faults.py --only poison store
    python benchmarks/faults.py --scenario two-producers redis-restart   # same as --only
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from benchmarks.soak import SoakConfig, SoakRedis, admin, running_batches, start_fake  # noqa: E402
from common import redis_keys  # noqa: E402
from common.ledger import RunLedger  # noqa: E402
from common.paths import SAMPLE_CSV  # noqa: E402
from common.records import make_headline  # noqa: E402
from common.services import ManagedProcess, start_worker, wait_until  # noqa: E402
from common.store import ResultStore  # noqa: E402

WORK = ROOT / "var" / "faults"


@dataclass
class Outcome:
    """One scenario's audit; ``ok`` is the verdict (nothing lost, nothing twice)."""

    scenario: str
    queue: str
    headlines: int
    faults: dict[str, int] = field(default_factory=dict)
    results: int = 0
    lost: int = 0
    duplicated: int = 0
    dead_lettered: int = 0
    recovered: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    # what else the scenario must show (the run finalized, the ledger counts what was sent)
    checks: dict[str, bool] = field(default_factory=dict)
    recovery_s: float | None = None  # after the fault, until the batches it hit were recorded

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and all(self.checks.values())


def titles(n: int, tag: str) -> list[str]:
    """N distinct real sample headlines, made unique per run by a suffix."""
    with open(SAMPLE_CSV, newline="", encoding="utf-8") as f:
        rows = [r["title"].strip() for r in csv.DictReader(f) if r.get("title", "").strip()]
    return [f"{rows[i % len(rows)]} ({tag} {i})" for i in range(n)]


def write_csv(path: Path, texts: Iterable[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["date", "title", "stock_symbol"])
        for t in texts:
            w.writerow(["2020-01-02", t, ""])
    return path


class Bench:
    """One scenario's world: our own Redis (AOF), the fake endpoint, workers and a CLI."""

    def __init__(self, name: str, latency: float = 0.02, **settings: Any) -> None:
        self.run_id = f"{name}-{uuid.uuid4().hex[:6]}"
        self.base = WORK / self.run_id
        self.logs = self.base / "logs"
        self.redis = SoakRedis(self.base)
        self.fake, self.fake_url = start_fake(SoakConfig(latency=(latency, latency)), self.logs)
        self.results = str(settings.pop("results_dir", self.base / "runs"))
        self.env = {
            **os.environ, "TICKERTAG_REDIS_URL": self.redis.url,
            "TICKERTAG_RESULTS_DIR": self.results, "TICKERTAG_RUN_ID": self.run_id,
            "TICKERTAG_LLM_BASE_URL": self.fake_url, "TICKERTAG_LLM_MODEL": "fake",
            "TICKERTAG_RESPONSE_FORMAT": "llama.cpp", "TICKERTAG_AUTO_CURATE": "false",
            "TICKERTAG_BACKOFF_BASE_S": "0.1", "TICKERTAG_BACKOFF_MAX_S": "1",
            "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "COLUMNS": "200",
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
            **{f"TICKERTAG_{k.upper()}": str(v) for k, v in settings.items()},
        }
        self.procs: list[ManagedProcess] = []
        self.t0 = time.monotonic()

    def worker(self, queue: str = "annotate", concurrency: int = 1,
               app: str = "common.celery_app") -> ManagedProcess:
        node = f"{queue}{len(self.procs)}-{time.monotonic_ns() % 10**6}@%h"
        if app == "common.celery_app":
            w = start_worker(queue, self.logs, concurrency=concurrency, env=self.env, name=node)
        else:
            argv = [sys.executable, "-m", "celery", "-A", app, "worker", "-Q", queue, "-P",
                    "threads", "-c", str(concurrency), "-n", node, "--without-gossip",
                    "--without-mingle", "-l", "INFO"]
            w = ManagedProcess(f"worker-{queue}", argv, self.logs / f"w-{node[:12]}.log",
                               env=self.env)
        self.procs.append(w)
        return w

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """``tickertag ARGS`` in this world (the producer side)."""
        return subprocess.run([sys.executable, "-m", "tickertag", *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout, cwd=ROOT)

    def ledger(self) -> RunLedger:
        return RunLedger.from_url(self.redis.url, self.run_id)

    def ended(self) -> int:
        """Headlines that ended as a result or a dead letter, by the ledger (0 while Redis is
        down)."""
        try:
            st = self.ledger().stats()
        except redis.RedisError:
            return 0
        return int(st["headlines_done"] + st["headlines_dead"])

    def settled(self) -> bool:
        """Every finished batch's files are in the store (``RunLedger.settled``): a batch is
        counted a moment before its files move, so an audit at once could miss it."""
        try:
            return self.ledger().settled()
        except redis.RedisError:
            return False

    def wait_ended(self, n: int, timeout: float, tick: Callable[[], None] | None = None,
                   partial: bool = False) -> None:
        """Until ``n`` headlines ended and, at the run's end, the run is ``settled``;
        ``partial``: a point inside the run (batches still in flight), not its end."""
        deadline = time.monotonic() + timeout
        while self.ended() < n or not (partial or self.settled()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.run_id}: {self.ended()}/{n} ended after {timeout} s")
            if tick:
                tick()
            time.sleep(0.5)

    def wait_or_note(self, n: int, timeout: float, out: Outcome,
                     tick: Callable[[], None] | None = None) -> None:
        """``wait_ended``, but a run that stops short is noted and audited (its lost headlines
        counted in the table) instead of ending the benchmark with a traceback."""
        try:
            self.wait_ended(n, timeout, tick)
        except TimeoutError as e:
            out.notes.append(f"FAILED: {e}")

    def audit(self, texts: list[str], out: Outcome) -> Outcome:
        """Count each headline's results and dead letters in the store itself."""
        ids = {make_headline({"title": t}, "faults").id for t in texts}
        store = ResultStore(self.results, self.run_id)
        seen: dict[str, int] = {}
        for r in store.iter_results():
            seen[r["id"]] = seen.get(r["id"], 0) + 1
        dead = {h["id"] for d in store.iter_dead() for h in d["headlines"]}
        out.results = sum(1 for i in ids if i in seen)
        out.dead_lettered = len(dead & ids)
        out.lost = sum(1 for i in ids if i not in seen and i not in dead)
        out.duplicated = sum(1 for i in ids if seen.get(i, 0) > 1 or (i in seen and i in dead))
        out.seconds = round(time.monotonic() - self.t0, 1)
        return out

    def finalized(self, wait_s: float = 0.0, settle_s: float = 1.0) -> tuple[bool, int]:
        """Whether the run finalized (within ``wait_s``), and how many curation messages it
        sent: the ``curate`` queue has no worker here, so each finalizing leaves one. The flag
        is set a moment before its message is published, so both are waited for; then
        ``settle_s`` more, so that a second message would be counted too."""
        client = redis.Redis.from_url(self.redis.url)
        flag = f"{redis_keys.run(self.run_id)}:finalized"
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if client.exists(flag) and client.llen("curate"):
                break
            time.sleep(0.2)
        time.sleep(settle_s)
        return bool(client.exists(flag)), int(client.llen("curate"))

    def store_batches(self) -> set[str]:
        """Batch ids with an outcome in the store (a results shard, a dead letter or both)."""
        base = Path(self.results) / self.run_id
        return ({p.name.removesuffix(".jsonl") for p in (base / "results").glob("*.jsonl")}
                | {p.stem for p in (base / "dead").glob("*.json")})

    def close(self) -> None:
        for p in self.procs:
            p.stop()
        self.fake.stop()
        self.redis.stop()


def received(bench: Bench) -> int:
    """Task deliveries seen by the workers (a redelivered copy counts again)."""
    return sum(p.tail(10**7).count("] received") for p in bench.procs)


# -- the scenarios -------------------------------------------------------------------------
def visibility(n: int) -> Outcome:
    b = Bench("visibility", latency=0.7, batch_size=8, concurrency=1, visibility_timeout_s=2,
              batch_lease_s=6, request_timeout_s=5)
    texts = titles(n, b.run_id)
    out = Outcome("1 batch outlives the visibility timeout", "annotate", n)
    try:
        for _ in range(2):
            b.worker(concurrency=1)
        r = b.cli("produce", str(write_csv(b.base / "in.csv", texts)), "--run", b.run_id)
        assert r.returncode == 0, r.stderr[-2000:]
        b.wait_ended(n, 60 + n * 1.5)
        time.sleep(4)  # a late copy would call the endpoint now
        batches = -(-n // 8)
        out.faults = {"redeliveries": max(0, received(b) - batches)}
        calls = admin(b.fake_url)
        out.notes.append(f"endpoint calls {calls['total_calls']} for {n} headlines "
                         f"(max {calls['calls_max']} per headline)")
        return b.audit(texts, out)
    finally:
        b.close()


def _fill(mount: Path) -> Path:
    """Fill the tmpfs to the last byte (a real ENOSPC for every later write)."""
    ballast = mount / "ballast"
    with open(ballast, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    return ballast


def store_full(n: int, full_s: float = 6.0) -> Outcome:
    out = Outcome("2 result store disk full for a while", "annotate", n)
    mount = WORK / f"tmpfs-{uuid.uuid4().hex[:6]}"
    mount.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs",
                                            str(mount)], capture_output=True).returncode:
        out.notes.append("skipped: mounting a tmpfs needs root")
        return out
    # paced (~25 headlines/s) so that most batches finish while the disk is full
    b = Bench("store", latency=0.3, batch_size=10, concurrency=2, results_dir=mount)
    texts = titles(n, b.run_id)
    try:
        for _ in range(2):
            b.worker(concurrency=2)
        r = b.cli("produce", str(write_csv(b.base / "in.csv", texts)), "--run", b.run_id)
        assert r.returncode == 0, r.stderr[-2000:]
        b.wait_ended(n // 10, 120, partial=True)
        ballast = _fill(mount)
        t_full = time.monotonic()
        during = b.ended()
        time.sleep(full_s)
        ballast.unlink()
        full_for = time.monotonic() - t_full
        b.wait_ended(n, 120 + n * 0.2)
        logs = "".join(p.tail(10**7) for p in b.procs)
        out.faults = {"disk full (s)": round(full_for),
                      "ENOSPC in worker logs": logs.count("No space left on device")}
        out.notes.append(f"{b.ended() - during} headlines ended after the disk filled")
        return b.audit(texts, out)
    finally:
        b.close()
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def redis_tag(n: int, model: Path, visibility_s: int = 20) -> Outcome:
    """A batch received just before Redis died stays in the broker's unacked set (kept by the
    AOF) and comes back only after the visibility timeout: 20 s here, TICKERTAG_VISIBILITY_TIMEOUT_S
    (3600 s by default) in a deployment."""
    b = Bench("redis-tag", batch_size=25, ner_threads=1, visibility_timeout_s=visibility_s)
    texts = titles(n, b.run_id)
    out = Outcome("3 Redis restarts during a tag run", "ner", n)
    src = write_csv(b.base / "in.csv", texts)
    try:
        b.worker("ner", concurrency=1)
        producer = ManagedProcess("tag", [sys.executable, "-m", "tickertag", "tag", str(src),
                                          "--model", str(model), "--run", b.run_id],
                                  b.logs / "tag.log", env=b.env)
        kills, restarts = 0, 0
        for share in (0.3, 0.6):
            b.wait_ended(int(n * share), 300, partial=True)
            b.redis.restart_after_crash(down_s=2.0)
            kills += 1
        deadline = time.monotonic() + 300 + n * 0.05
        last_kill = time.monotonic()
        while b.ended() < n:
            assert time.monotonic() < deadline, f"{b.ended()}/{n}: {producer.tail(2000)}"
            if not producer.alive() and producer.proc.returncode != 0:
                producer = ManagedProcess("tag", producer.argv, b.logs / "tag.log", env=b.env)
                restarts += 1  # a user re-runs the command; the run resumes
            time.sleep(0.5)
        out.faults = {"Redis SIGKILL + restart": kills, "producer reruns": restarts}
        out.notes.append(f"the last headline ended {time.monotonic() - last_kill:.0f} s after the "
                         f"second restart (visibility timeout {visibility_s} s)")
        return b.audit(texts, out)
    finally:
        b.close()


def poison(n: int, deliveries: int = 3) -> Outcome:
    b = Bench("poison", batch_size=10, concurrency=4, visibility_timeout_s=4, batch_lease_s=3,
              max_deliveries=deliveries)
    texts = titles(n, b.run_id)
    texts[n // 2] += " #poison"
    out = Outcome("4 poison batch segfaults its worker", "annotate", n)
    app = "benchmarks.crashy_worker"
    try:
        ws = [b.worker(concurrency=2, app=app) for _ in range(2)]
        r = b.cli("produce", str(write_csv(b.base / "in.csv", texts)), "--run", b.run_id)
        assert r.returncode == 0, r.stderr[-2000:]
        crashes = 0

        def supervise() -> None:  # what compose's restart policy or systemd does
            nonlocal crashes
            for i, w in enumerate(ws):
                if not w.alive():
                    crashes += 1
                    ws[i] = b.worker(concurrency=2, app=app)

        b.wait_ended(n, 240, tick=supervise)
        store = ResultStore(b.results, b.run_id)
        kinds = [d.get("error_type") for d in store.iter_dead()]
        out.faults = {"worker segfaults": crashes}
        out.notes.append(f"dead letters: {', '.join(sorted(set(map(str, kinds)))) or 'none'} "
                         f"({len(kinds)} batches)")
        dead_before = b.audit(texts, Outcome("", "", n)).dead_lettered
        for w in ws:  # the native library is fixed: plain workers from here on
            w.stop()
        b.worker(concurrency=2)
        r = b.cli("requeue", "--run", b.run_id)
        assert r.returncode == 0, r.stderr[-2000:]
        time.sleep(1)
        b.wait_ended(n, 120)
        b.audit(texts, out)
        out.dead_lettered = dead_before
        out.recovered = dead_before - sum(1 for d in store.iter_dead() for _ in d["headlines"])
        return out
    finally:
        b.close()


def train_kill(ttl_s: float = 8.0) -> Outcome:
    from training.selection import last_checkpoint
    from workers.train.jobs import progress_key

    b = Bench("train-kill", train_lock_ttl_s=ttl_s)
    out = Outcome("5 train worker SIGKILLed mid-training", "train", 40)
    cfg = b.base / "tiny.json"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(json.dumps({"max_train": 40, "max_valid": 10, "torch_threads": 1,
                               "epochs": 3, "output": str(b.base / "model")}))
    client = redis.Redis.from_url(b.redis.url, decode_responses=True)

    def progress() -> dict[str, Any]:
        return {k: json.loads(v) for k, v in client.hgetall(progress_key(b.run_id)).items()}

    def submit() -> None:
        r = b.cli("train", "gliner", "--config", str(cfg), "--submit", "--run-id", b.run_id)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]

    def status() -> str:
        r = b.cli("train-status", b.run_id)
        return json.loads(r.stdout).get("status", "") if r.returncode == 0 else ""

    try:
        w = b.worker("train")
        submit()
        # killed once an epoch's checkpoint is complete (one killed mid-save is passed over)
        wait_until(lambda: last_checkpoint(b.base / "model") is not None, 600, "epoch 1", w)
        os.kill(w.pid, signal.SIGKILL)
        killed = time.monotonic()
        wait_until(lambda: status() == "dead", 120 + ttl_s, "status dead")
        detect = time.monotonic() - killed
        b.worker("train")
        submit()
        wait_until(lambda: progress().get("status") in ("done", "failed"), 900, "retrain")
        p = progress()
        out.faults = {"train worker SIGKILL": 1}
        out.results = 40 if p["status"] == "done" and p.get("epoch") == 3 else 0
        out.lost = 0 if out.results else 40
        out.recovered = 1 if p.get("resumed") else 0
        out.notes.append(f"shown dead {detect:.0f} s after the kill (lock TTL {ttl_s:.0f} s); "
                         f"resubmitted: {p['status']}, resumed from a checkpoint: "
                         f"{bool(p.get('resumed'))}, epochs 3/3: {p.get('epoch') == 3}")
        out.seconds = round(time.monotonic() - b.t0, 1)
        return out
    finally:
        b.close()


def two_producers(n: int) -> Outcome:
    """Both producers claim batches from one ledger while both wait for room (3 batches in
    flight for the run), so their claims interleave for the whole run."""
    b = Bench("two-producers", latency=0.05, batch_size=8, concurrency=4,
              max_batches_in_flight=3, auto_curate="true")
    out = Outcome("6 two producers at once, sources sharing half their headlines", "annotate", n)
    try:
        texts = titles(n, b.run_id)
        q = n // 4  # a: the first 3/4, b: the last 3/4 backwards; they share the middle half
        sources = (write_csv(b.base / "a.csv", texts[: n - q]),
                   write_csv(b.base / "b.csv", reversed(texts[q:])))
        ledger = b.ledger()
        at_once = 0
        with ThreadPoolExecutor(2) as pool:
            runs = [pool.submit(b.cli, "produce", str(src), "--run", b.run_id, "--json")
                    for src in sources]
            # the workers start once both producers are live (each then waits for room), so
            # one producer cannot finish the run before the other has started (a slow start)
            deadline = time.monotonic() + 120
            while ledger.live_producers() < 2 and not any(r.done() for r in runs) \
                    and time.monotonic() < deadline:
                time.sleep(0.05)
            at_once = ledger.live_producers()
            for _ in range(2):
                b.worker(concurrency=2)
            while not all(r.done() for r in runs):
                at_once = max(at_once, ledger.live_producers())
                time.sleep(0.05)
        reports = []
        for r in (f.result() for f in runs):
            assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
            reports.append(json.loads(r.stdout.strip().splitlines()[-1]))
        b.wait_or_note(n, 60 + n * 0.5, out)
        finalized, curations = b.finalized(wait_s=30)
        st = ledger.stats()
        sent = len(b.store_batches())
        claimed = sum(rep["enqueued"] + rep["resent_pending"] for rep in reports)
        calls = admin(b.fake_url)
        out.faults = {"producers at once": at_once,
                      "headlines in both files": sum(rep["rows"] for rep in reports) - n}
        out.checks = {
            "both producers ran at once": at_once == 2,
            "batches_enqueued = batches sent": st["batches_enqueued"] == sent
            == st["batches_finished"],
            "headlines_enqueued = distinct headlines": st["headlines_enqueued"] == n == claimed,
            "finalized once": finalized and curations == 1,
            "one endpoint call per headline": calls["total_calls"] == n
            and calls["calls_max"] == 1,
        }
        out.notes.append(f"batches: ledger {st['batches_enqueued']}, in the store {sent}; "
                         f"headlines sent by each producer {[rep['enqueued'] for rep in reports]}"
                         f", skipped as claimed by the other "
                         f"{[rep['duplicates'] for rep in reports]}; finalized {finalized} "
                         f"({curations} curation message); endpoint calls "
                         f"{calls['total_calls']} (max {calls['calls_max']} per headline)")
        out.notes += [f"FAILED: {k}" for k, ok in out.checks.items() if not ok]
        return b.audit(texts, out)
    finally:
        b.close()


def redis_restart(n: int, down_s: float = 3.0) -> Outcome:
    """Two batches of n/2 headlines, one per worker, at 2 requests at a time and 1 s per
    request (n = 40: 10 s a batch); Redis goes down 1.5 s into both, so nothing else is queued
    and the recovery time is theirs alone."""
    b = Bench("redis-restart", latency=1.0, batch_size=max(1, n // 2), concurrency=2,
              auto_curate="true")
    out = Outcome("7 Redis shut down and restarted (AOF) during long batches", "annotate", n)
    try:
        texts = titles(n, b.run_id)
        ws = [b.worker(concurrency=1) for _ in range(2)]
        for w in ws:
            wait_until(lambda w=w: "ready." in w.tail(4000), 90, "worker", w)
        r = b.cli("produce", str(write_csv(b.base / "in.csv", texts)), "--run", b.run_id)
        assert r.returncode == 0, r.stderr[-2000:]
        wait_until(lambda: sum(running_batches(w.log_path) for w in ws) >= 2, 60, "batches")
        time.sleep(1.5)
        ledger = b.ledger()
        # the batches Redis interrupts: those whose lease a running copy holds
        running = {k.rsplit(":", 1)[-1] for k in
                   ledger.r.scan_iter(redis_keys.batch_lease(b.run_id, "*"))}
        ended_before = b.ended()
        t_down = time.monotonic()
        b.redis.restart_after_shutdown(down_s=down_s)
        t_up = time.monotonic()
        first_after: float | None = None
        interrupted_after: float | None = None
        exits = 0

        def tick() -> None:  # a supervisor restarts a worker that exits (compose, systemd)
            nonlocal first_after, interrupted_after, exits
            try:
                if first_after is None and b.ended() > ended_before:
                    first_after = time.monotonic() - t_up
                if interrupted_after is None and all(map(ledger.is_finished, running)):
                    interrupted_after = time.monotonic() - t_up
            except redis.RedisError:
                pass
            for i, w in enumerate(ws):
                if not w.alive():
                    exits += 1
                    ws[i] = b.worker(concurrency=1)

        b.wait_or_note(n, 120 + n, out, tick=tick)
        tick()
        all_after = time.monotonic() - t_up
        finalized, curations = b.finalized(wait_s=30)
        st = ledger.stats()
        calls = admin(b.fake_url)
        out.faults = {"Redis SHUTDOWN + restart": 1, "batches running": len(running),
                      "worker exits": exits}
        out.checks = {"finalized once": finalized and curations == 1,
                      "ledger = store": st["batches_finished"] == st["batches_enqueued"]
                      == len(b.store_batches())}
        out.recovery_s = interrupted_after
        out.notes.append(f"Redis down {t_up - t_down:.1f} s with {len(running)} batches "
                         f"running; once it was back: the first batch recorded after "
                         f"{first_after or 0:.1f} s, the interrupted ones after "
                         f"{interrupted_after or 0:.1f} s (recovery), the last headline after "
                         f"{all_after:.1f} s; finalized {finalized} "
                         f"({curations} curation message); endpoint calls "
                         f"{calls['total_calls']} for {n} headlines (the interrupted batches "
                         "ask again what the response cache had not kept)")
        out.notes += [f"FAILED: {k}" for k, ok in out.checks.items() if not ok]
        return b.audit(texts, out)
    finally:
        b.close()


# -- the report ----------------------------------------------------------------------------
SIZES = {"full": dict(visibility=64, store=1000, redis_tag=3000, poison=300, two_producers=400,
                      redis_restart=40),
         "quick": dict(visibility=16, store=200, redis_tag=400, poison=60, two_producers=96,
                       redis_restart=20)}


def run_all(size: str = "full", only: Iterable[str] | None = None,
            say: Callable[[str], None] = print) -> list[Outcome]:
    """Run the scenarios in order (``only`` picks some by name) and return their audits."""
    from training.baselines import build_spacy

    n = SIZES[size]

    def spacy_model() -> Path:  # built only when a scenario needs it
        model = WORK / "spacy-model"
        if not (model / "tickertag.json").exists():
            build_spacy(str(model))
        return model

    runs: dict[str, Callable[[], Outcome]] = {
        "visibility": lambda: visibility(n["visibility"]),
        "store": lambda: store_full(n["store"]),
        "redis-tag": lambda: redis_tag(n["redis_tag"], spacy_model()),
        "poison": lambda: poison(n["poison"]),
        "train-kill": train_kill,
        "two-producers": lambda: two_producers(n["two_producers"]),
        "redis-restart": lambda: redis_restart(n["redis_restart"]),
    }
    outs = []
    for name, fn in runs.items():
        if only and name not in only:
            continue
        say(f"scenario {name} ...")
        outs.append(fn())
        say(f"  {outs[-1]}")
    return outs


def table(outs: list[Outcome]) -> Table:
    t = Table(title="Fault scenarios (benchmarks/faults.py)")
    for c in ("scenario", "queue", "headlines", "faults", "lost", "duplicated", "dead-lettered",
              "recovered", "recovery s", "seconds", "notes"):
        t.add_column(c)
    for o in outs:
        t.add_row(o.scenario, o.queue, str(o.headlines),
                  ", ".join(f"{k} {v}" for k, v in o.faults.items()), str(o.lost),
                  str(o.duplicated), str(o.dead_lettered), str(o.recovered),
                  "-" if o.recovery_s is None else f"{o.recovery_s:.1f}", str(o.seconds),
                  "; ".join(o.notes))
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="CI sizes (a few minutes)")
    ap.add_argument("--only", "--scenario", nargs="*", help="scenario names: visibility "
                    "store redis-tag poison train-kill two-producers redis-restart")
    ap.add_argument("--keep", action="store_true", help="keep var/faults/ (logs, stores)")
    args = ap.parse_args()
    outs = run_all("quick" if args.quick else "full", args.only)
    Console(width=200).print(table(outs))
    if not args.keep:
        shutil.rmtree(WORK, ignore_errors=True)
    sys.exit(0 if all(o.ok for o in outs) else 1)


if __name__ == "__main__":
    main()
