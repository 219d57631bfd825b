"""Multi-host harness: the annotation pipeline across network-namespace hosts on one machine.

Over 300 lines on purpose: a benchmark is one runnable script (hosts, scenarios, audit,
table), so ``python benchmarks/multihost.py`` needs nothing else.

Each "host" is a Linux network namespace on a private bridge (``benchmarks/netns.py``): Redis
(with a password, bound to its own address) on one, the fake OpenAI-compatible endpoint
(``tests/fake_llm.py``, fixed latency) on another, the producer (``python -m tickertag produce``)
on a third, Celery workers (the command ``common.services.start_worker`` builds, run with
``ip netns exec``) on two or three more. Every process gets its settings from ``TICKERTAG_*``
environment variables only; all hosts share the filesystem, so the result store is one
directory. Measured:

1. throughput against the fixed-latency endpoint with 1, 2, 4 worker processes spread over the
   worker hosts, as a share of the ideal (processes x per-process concurrency / latency, as in
   ``benchmarks/dispatch.py``);
2. a worker host cut off the network mid-batch (its link set down from the root namespace): its
   unacknowledged batches come back after the visibility timeout and the other hosts finish them;
   the host is then reconnected and the run audited again once it has settled;
3. Redis unreachable from every host for ~30 s (the Redis host's link down, then up).

Every run is audited against its source: each headline id has exactly one result or one dead
letter in the result store, no result key appears twice, and the ledger agrees
(``enqueued == done + dead``).

Usage::

    python benchmarks/multihost.py            # 1/2/4 processes over 3 worker hosts, cut, outage
    python benchmarks/multihost.py --quick    # 1/2 processes over 2 hosts, cut, outage (~2 min)

Writes the table and the command to ``benchmarks/RESULTS_multihost.md``. Needs root (network
namespaces). Cleans up after itself, also on failure, Ctrl-C or SIGTERM: see ``netns.Lab``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import secrets
import shutil
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import redis  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from benchmarks.netns import (  # noqa: E402
    Host,
    Lab,
    list_netns,
    netns_unavailable,
    sigterm_as_interrupt,
    stop_all,
)
from benchmarks.recorded import recorded_line  # noqa: E402
from common.ledger import RunLedger  # noqa: E402
from common.paths import SAMPLE_CSV  # noqa: E402
from common.records import InvalidRecord, make_headline  # noqa: E402
from common.services import ManagedProcess, redis_server_binary, wait_until  # noqa: E402
from common.store import ResultStore  # noqa: E402

RESULTS_MD = ROOT / "benchmarks" / "RESULTS_multihost.md"
REDIS_PORT, LLM_PORT = 6379, 8000
PY = sys.executable

# The fake endpoint of tests/fake_llm.py, served on the host's own address (FakeLLM.start binds
# 127.0.0.1, which other namespaces cannot reach).
FAKE_LLM_RUNNER = """
import sys
sys.path.insert(0, {tests!r})
from aiohttp import web
from fake_llm import FakeLLM
f = FakeLLM(latency={latency!r}, slow_s=5.0)
app = web.Application(client_max_size=4 * 1024 * 1024)
app.router.add_post("/v1/chat/completions", f.handle)
app.router.add_get("/v1/models", f.models)
app.router.add_route("*", "/admin", f.admin)
print("fake LLM on {host}:{port}", flush=True)
web.run_app(app, host={host!r}, port={port}, access_log=None, print=None, backlog=1024)
"""


@dataclass
class MultiConfig:
    """Sizes and timings of one harness run (``quick()`` is the test-sized one)."""

    worker_hosts: int = 3
    scale: tuple[int, ...] = (1, 2, 4)  # worker processes, round-robin over the worker hosts
    latency: float = 0.2  # fixed endpoint latency, seconds
    concurrency: int = 8  # in-flight LLM requests per worker process (TICKERTAG_CONCURRENCY)
    threads: int = 2  # Celery threads per worker process (batches at once)
    batch_size: int = 16
    seconds: float = 8.0  # scaling runs: about this long at the ideal rate
    min_headlines: int = 160
    fault_headlines: int = 800  # cut and outage runs
    fault_procs_per_host: int = 1
    fault_at: float = 0.25  # progress (finished / N) at which the fault is injected
    outage_s: float = 30.0
    visibility_timeout_s: int = 10
    batch_lease_s: float = 10.0
    request_timeout_s: float = 5.0
    max_retries: int = 2
    settle_s: float = 60.0  # after a fault: bound on the wait for stalled batches to end
    run_timeout_s: float = 240.0  # bound on one run
    work_dir: Path = ROOT / "var" / "multihost"
    keep: bool = False

    @classmethod
    def quick(cls, **over: Any) -> MultiConfig:
        base: dict[str, Any] = dict(worker_hosts=2, scale=(1, 2), seconds=4.0,
                                    fault_headlines=400, settle_s=40.0, run_timeout_s=120.0)
        base.update(over)
        return cls(**base)

    def ideal(self, procs: int) -> float:
        return procs * self.concurrency / self.latency


@dataclass
class Row:
    """One run: what the table shows, plus the evidence behind it."""

    scenario: str
    headlines: int
    procs: int
    hosts: int
    wall_s: float = 0.0
    rate: float = 0.0
    ideal: float = 0.0
    lost: int = -1
    duplicated: int = -1
    dead: int = -1
    completed: bool = False
    ledger_ok: bool = False
    store_matches_ledger: bool = False
    notes: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def pct(self) -> float:
        return 100 * self.rate / self.ideal if self.ideal else 0.0

    @property
    def ok(self) -> bool:
        return self.completed and self.ledger_ok and self.lost == 0 and self.duplicated == 0


# -- source ------------------------------------------------------------------------------------
def build_source(path: Path, n: int, tag: str) -> list[str]:
    """N unique real Benzinga titles (varied, tagged with the run so the LLM cache never
    answers for an earlier run) as a CSV; returns their headline ids."""
    with open(SAMPLE_CSV, newline="", encoding="utf-8") as f:
        sample = [r for r in csv.DictReader(f) if r.get("title", "").strip()]
    ids: list[str] = []
    seen: set[str] = set()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["date", "title", "stock_symbol"])
        k = 0
        while len(ids) < n and k < 100 * n + 1000:
            row = sample[k % len(sample)]
            k += 1
            title = f"{row['title'].replace('#', '')} ({tag}-{k})"  # '#' marks fake-LLM faults
            try:
                h = make_headline({"title": title}, "src")
            except InvalidRecord:
                continue
            if h.id in seen:
                continue
            seen.add(h.id)
            ids.append(h.id)
            w.writerow([row["date"], title, row["stock_symbol"]])
    if len(ids) < n:
        raise RuntimeError(f"only {len(ids)} unique headlines could be built")
    return ids


# -- worker logs -------------------------------------------------------------------------------
_TASK = re.compile(r"Task tickertag\.annotate\.batch\[([0-9a-f-]+)\] (\w+)")


def task_events(log: Path) -> list[tuple[str, str]]:
    try:
        return _TASK.findall(log.read_text(errors="replace"))
    except OSError:
        return []


def running_tasks(log: Path) -> set[str]:
    """Task ids a worker has received and not yet ended (succeeded, retried, rejected, failed),
    from its log; a redelivered copy counts again."""
    n: dict[str, int] = {}
    for tid, what in task_events(log):
        n[tid] = n.get(tid, 0) + (1 if what == "received" else -1)
    return {t for t, c in n.items() if c > 0}


def succeeded_tasks(log: Path) -> set[str]:
    return {tid for tid, what in task_events(log) if what == "succeeded"}


_OUTCOME = re.compile(r"Task tickertag\.annotate\.batch\[([0-9a-f-]+)\] succeeded in "
                      r"[0-9.e-]+s: \{'batch_id': '([^']+)'(?P<rest>[^}]*)")


def batch_outcomes(log: Path) -> dict[str, tuple[str, int, int]]:
    """Task id -> (batch id, headlines done, headlines dead) of the batches a worker ran to
    the end (not those it skipped as already finished), from its log."""
    out = {}
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return {}
    for m in _OUTCOME.finditer(text):
        if "'skipped'" in m.group(0):
            continue
        done = re.search(r"'headlines_done': (\d+)", m.group("rest"))
        dead = re.search(r"'headlines_dead': (\d+)", m.group("rest"))
        out[m.group(1)] = (m.group(2), int(done.group(1)) if done else 0,
                           int(dead.group(1)) if dead else 0)
    return out


# -- the cluster -------------------------------------------------------------------------------
class Cluster:
    """The hosts and the long-lived services (Redis, endpoint) of one harness run."""

    def __init__(self, lab: Lab, cfg: MultiConfig, base: Path,
                 log: Callable[[str], None]) -> None:
        self.lab, self.cfg, self.base, self.log = lab, cfg, base, log
        self.logs = base / "logs"
        self.results_dir = base / "runs"
        self.redis_host = lab.add_host("redis")
        self.llm_host = lab.add_host("llm")
        self.producer_host = lab.add_host("producer")
        self.worker_hosts = [lab.add_host(f"w{i + 1}") for i in range(cfg.worker_hosts)]
        self.password = secrets.token_hex(16)
        self.redis_url = f"redis://:{self.password}@{self.redis_host.ip}:{REDIS_PORT}/0"
        self.llm_url = f"http://{self.llm_host.ip}:{LLM_PORT}"
        self._observer: redis.Redis | None = None
        self._n_workers = 0

    # -- services ------------------------------------------------------------------------------
    def start_services(self) -> None:
        data = self.base / "redis"
        data.mkdir(parents=True, exist_ok=True)
        conf = data / "redis.conf"  # the password in a 0600 file, not on a command line
        conf.write_text(f"bind {self.redis_host.ip}\nport {REDIS_PORT}\n"
                        f"requirepass {self.password}\nsave \"\"\nappendonly no\n"
                        f"dir {data}\n")
        conf.chmod(0o600)
        rp = self.lab.start(self.redis_host, "redis", [redis_server_binary(), str(conf)],
                            self.logs / "redis.log")
        wait_until(lambda: self.observer().ping(), 30, "redis-server", rp)
        code = FAKE_LLM_RUNNER.format(tests=str(ROOT / "tests"), latency=self.cfg.latency,
                                      host=self.llm_host.ip, port=LLM_PORT)
        fp = self.lab.start(self.llm_host, "fake-llm", [PY, "-c", code],
                            self.logs / "fake-llm.log", env=self.env())
        wait_until(lambda: httpx.get(self.llm_url + "/v1/models", timeout=2).status_code == 200,
                   60, "fake LLM", fp)

    def observer(self) -> redis.Redis:
        """The harness's own Redis client (root namespace, through the bridge), with timeouts
        so a cut link never hangs the harness."""
        if self._observer is None:
            self._observer = redis.Redis.from_url(self.redis_url, decode_responses=True,
                                                  socket_timeout=3, socket_connect_timeout=3)
        return self._observer

    def env(self, **extra: str) -> dict[str, str]:
        c = self.cfg
        env = {
            "TICKERTAG_REDIS_URL": self.redis_url, "TICKERTAG_LLM_BASE_URL": self.llm_url,
            "TICKERTAG_LLM_MODEL": "fake", "TICKERTAG_RESULTS_DIR": str(self.results_dir),
            "TICKERTAG_RESPONSE_FORMAT": "llama.cpp",
            "TICKERTAG_VISIBILITY_TIMEOUT_S": str(c.visibility_timeout_s),
            "TICKERTAG_BATCH_SIZE": str(c.batch_size),
            "TICKERTAG_CONCURRENCY": str(c.concurrency),
            "TICKERTAG_BATCH_LEASE_S": str(c.batch_lease_s),
            "TICKERTAG_REQUEST_TIMEOUT_S": str(c.request_timeout_s),
            "TICKERTAG_MAX_RETRIES": str(c.max_retries),
            "TICKERTAG_BACKOFF_BASE_S": "0.1", "TICKERTAG_BACKOFF_MAX_S": "1.0",
            "TICKERTAG_AUTO_CURATE": "false",
            # no ./tickertag.toml of whoever runs this: the environment is the whole config
            "TICKERTAG_CONFIG": str(self.base / "no-config.toml"),
            "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": str(ROOT),
            "COLUMNS": "200",
        }
        env.update(extra)
        return env

    def start_worker(self, host: Host) -> ManagedProcess:
        """One worker process on ``host``: ``common.services.start_worker``'s command."""
        self._n_workers += 1
        node = f"annotate-{host.name}-{self._n_workers}@{host.name}"
        argv = [PY, "-m", "celery", "-A", "common.celery_app", "worker", "-Q", "annotate",
                "-P", "threads", "-c", str(self.cfg.threads), "-n", node, "--without-gossip",
                "--without-mingle", "-l", "INFO", "-E"]
        return self.lab.start(host, f"worker-{host.name}", argv,
                              self.logs / f"worker-{host.name}-{self._n_workers}.log",
                              env=self.env())

    def start_workers(self, procs: int, hosts: list[Host]) -> list[tuple[Host, ManagedProcess]]:
        ws = [(hosts[i % len(hosts)], self.start_worker(hosts[i % len(hosts)]))
              for i in range(procs)]
        for _, w in ws:
            wait_until(lambda w=w: "ready." in w.tail(6000), 120, "worker", w)
        return ws

    def start_producer(self, src: Path, run: str, in_flight: int) -> ManagedProcess:
        return self.lab.start(self.producer_host, "producer",
                              [PY, "-m", "tickertag", "produce", str(src), "--run", run],
                              self.logs / f"producer-{run}.log",
                              env=self.env(TICKERTAG_MAX_BATCHES_IN_FLIGHT=str(in_flight)))

    def stats(self, run: str) -> dict[str, float] | None:
        try:
            return RunLedger(self.observer(), run).stats()
        except (redis.RedisError, OSError):
            return None

    def run_settled(self, run: str) -> bool:
        """Every finished batch's files are in the store (``RunLedger.settled``)."""
        try:
            return RunLedger(self.observer(), run).settled()
        except (redis.RedisError, OSError):
            return False

    def reset_broker(self) -> None:
        """Between runs (no worker alive): an empty Redis, so nothing of one run leaks into
        the next (unacked copies, the LLM answer cache)."""
        wait_until(lambda: self.observer().flushdb(), 30, "redis flush")

    # -- one run -------------------------------------------------------------------------------
    def run(self, scenario: str, procs: int, hosts: list[Host], n: int,
            fault: Callable[[Row, dict], None] | None = None,
            settle: bool = False) -> Row:
        """Start ``procs`` workers over ``hosts``, produce N headlines, wait (bounded) for the
        run to finish, calling ``fault(row, ctx)`` once progress passes ``cfg.fault_at``;
        audit; stop the workers."""
        cfg = self.cfg
        run = f"mh-{scenario.split()[0]}-{uuid.uuid4().hex[:6]}"
        row = Row(scenario, n, procs, len({h.name for h in hosts[:procs]}), ideal=cfg.ideal(procs))
        src = self.base / "sources" / f"{run}.csv"
        expected = build_source(src, n, run[-6:])
        self.reset_broker()
        ws = self.start_workers(procs, hosts)
        ctx: dict[str, Any] = {"workers": ws, "run": run}
        producer: ManagedProcess | None = None
        try:
            producer = self.start_producer(src, run, max(8, 2 * procs * cfg.threads))
            deadline = time.monotonic() + cfg.run_timeout_s
            fired = fault is None
            st: dict[str, float] | None = None
            while time.monotonic() < deadline:
                st = self.stats(run)
                if producer.proc.poll() not in (None, 0):
                    raise RuntimeError(f"producer exited rc {producer.proc.returncode}:\n"
                                       f"{producer.tail()}")
                for h, w in ws:
                    if not w.alive() and not ctx.get("noted_dead", {}).get(w.pid):
                        ctx.setdefault("noted_dead", {})[w.pid] = True
                        row.notes.append(f"worker on {h.name} exited rc {w.proc.returncode}")
                if st is not None:
                    done = st["headlines_done"] + st["headlines_dead"]
                    healed = ctx.get("healed_wall")
                    if healed and "resumed_s" not in row.detail and \
                            st.get("last_finished_at", 0) > healed:
                        # the first batch recorded after the fault ended
                        row.detail["resumed_s"] = round(st["last_finished_at"] - healed, 1)
                    if not fired and done >= cfg.fault_at * n:
                        fired = True
                        fault(row, ctx)  # type: ignore[misc]
                        continue
                    if (fired and producer.proc.poll() == 0 and st.get("produced_at")
                            and st["batches_enqueued"] == st["batches_finished"]
                            and self.run_settled(run)):
                        row.completed = True
                        break
                time.sleep(0.25)
            if not row.completed:
                row.notes.append(f"run not finished after {cfg.run_timeout_s:.0f}s: {st}")
            if st:
                row.wall_s = float(st.get("last_finished_at", 0) - st.get("started_at", 0))
                finished = st["headlines_done"] + st["headlines_dead"]
                row.rate = finished / row.wall_s if row.wall_s > 0 else 0.0
            row.detail["at_completion"] = audit(self, run, expected)
            if "after_fault" in ctx:
                ctx["after_fault"]()
            if settle:  # stalled copies of batches may still write: wait for them, audit again
                self.settle([w for _, w in ws])
                row.detail["after_settle"] = audit(self, run, expected)
                if "on_settled" in ctx:
                    ctx["on_settled"]()
            final = row.detail.get("after_settle", row.detail["at_completion"])
            worst = [row.detail["at_completion"], final]
            row.lost = max(a["lost"] for a in worst)
            row.duplicated = max(a["duplicated"] for a in worst)
            row.dead = final["dead"]
            row.ledger_ok = all(a["ledger_ok"] for a in worst)
            row.store_matches_ledger = all(a["store_matches_ledger"] for a in worst)
            if final["notes"]:
                row.notes.extend(final["notes"])
        finally:
            stop_all([w for _, w in ws] + ([producer] if producer else []), 10, self.log)
        return row

    def settle(self, workers: list[ManagedProcess]) -> float:
        """Wait (bounded by ``cfg.settle_s``) until no worker has a batch running; seconds."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < self.cfg.settle_s:
            if not any(running_tasks(w.log_path) for w in workers if w.alive()):
                break
            time.sleep(0.5)
        time.sleep(1.0)  # the shard of a batch that just ended is written before its log line
        return time.monotonic() - t0


def audit(cl: Cluster, run: str, expected: list[str]) -> dict[str, Any]:
    """The durable store against the source, and the ledger against both."""
    store = ResultStore(str(cl.results_dir), run)
    results = list(store.iter_results())
    keys = [r["key"] for r in results]
    rids = [r["id"] for r in results]
    dead_ids = [h["id"] for d in store.iter_dead() for h in d["headlines"]]
    exp = set(expected)
    have = set(rids) | set(dead_ids)
    both = set(rids) & set(dead_ids)
    dup = (len(keys) - len(set(keys))) + (len(rids) - len(set(rids))) + len(both) + (
        len(dead_ids) - len(set(dead_ids)))
    st = cl.stats(run) or {}
    ledger_ok = bool(st) and (st["headlines_enqueued"] == len(exp)
                              == st["headlines_done"] + st["headlines_dead"])
    # The ledger (Redis) and the durable store must tell the same story: a batch recorded as
    # done must not have its shard replaced afterwards by a stale copy's outcome.
    store_ok = bool(st) and (st["headlines_done"] == len(set(rids))
                             and st["headlines_dead"] == len(set(dead_ids)))
    notes = []
    if st and not store_ok:
        notes.append(f"ledger and store disagree: ledger done {st['headlines_done']} / dead "
                     f"{st['headlines_dead']}, store results {len(set(rids))} / dead letters "
                     f"{len(set(dead_ids))}")
    if have - exp:
        notes.append(f"{len(have - exp)} ids in the store that are not in the source")
    if both:
        notes.append(f"{len(both)} headlines both a result and a dead letter")
    return {"results": len(results), "dead": len(set(dead_ids)), "lost": len(exp - have),
            "duplicated": dup, "ledger_ok": ledger_ok, "store_matches_ledger": store_ok,
            "ledger": {k: st.get(k) for k in ("headlines_enqueued", "headlines_done",
                                              "headlines_dead", "batches_enqueued",
                                              "batches_finished")},
            "notes": notes}


# -- scenarios ---------------------------------------------------------------------------------
def scaling(cl: Cluster, procs: int, log: Callable[[str], None]) -> Row:
    cfg = cl.cfg
    n = int(max(cfg.min_headlines, cfg.ideal(procs) * cfg.seconds))
    n = -(-n // cfg.batch_size) * cfg.batch_size
    row = cl.run(f"scale {procs}", procs, cl.worker_hosts, n)
    log(f"  {row.scenario}: {row.headlines} headlines in {row.wall_s:.1f}s = "
        f"{row.rate:.0f}/s ({row.pct:.0f}% of ideal {row.ideal:.0f}/s), lost {row.lost}, "
        f"dup {row.duplicated}")
    return row


def cut_worker_host(cl: Cluster, log: Callable[[str], None]) -> Row:
    """A worker host drops off the network mid-batch; the others finish its batches."""
    cfg = cl.cfg
    hosts = cl.worker_hosts
    victim = hosts[-1]
    procs = cfg.fault_procs_per_host * len(hosts)

    def fault(row: Row, ctx: dict) -> None:
        mine = [w for h, w in ctx["workers"] if h is victim]
        t_wait = time.monotonic() + 15  # cut while the victim is mid-batch (bounded wait)
        while time.monotonic() < t_wait and not any(running_tasks(w.log_path) for w in mine):
            time.sleep(0.05)
        cl.lab.cut(victim)
        t_cut = time.monotonic()
        time.sleep(0.5)  # log lines of batches received just before the cut
        held = set().union(*(running_tasks(w.log_path) for w in mine))
        log(f"  cut {victim.name} ({victim.veth} down) holding {len(held)} batch(es)")
        row.detail.update(cut_host=victim.name, batches_held_by_cut_host=len(held))
        if not held:
            row.notes.append("the cut host held no batch at the cut")

        def after() -> None:
            others = [w for h, w in ctx["workers"] if h is not victim]
            deadline = time.monotonic() + 10  # a task's "succeeded" line follows its record
            while True:
                done_elsewhere = set().union(*(succeeded_tasks(w.log_path) for w in others))
                if held <= done_elsewhere or time.monotonic() > deadline:
                    break
                time.sleep(0.25)
            row.detail["held_batches_finished_elsewhere"] = len(held & done_elsewhere)
            row.detail["cut_s"] = round(time.monotonic() - t_cut, 1)
            row.notes.append(f"{len(held & done_elsewhere)}/{len(held)} batch(es) held by the "
                             f"cut host were redelivered and finished on other hosts; host cut "
                             f"for {row.detail['cut_s']}s, then reconnected")
            cl.lab.heal(victim)
            log(f"  {victim.name} reconnected after {row.detail['cut_s']}s; settling")

        def settled() -> None:
            # Did a copy stalled on the cut host run to the end after reconnecting, i.e. after
            # another host had recorded the batch? Its outcome is then written over the shard.
            late = {tid: o for w in mine for tid, o in batch_outcomes(w.log_path).items()
                    if tid in held}
            row.detail["stale_copies_finished_on_cut_host"] = len(late)
            if late:
                row.notes.append(
                    f"{len(late)} stalled copy(ies) on the cut host ran to the end after it "
                    f"reconnected, after another host had recorded the same batch, and rewrote "
                    f"its outcome in the store ({sum(o[1] for o in late.values())} results, "
                    f"{sum(o[2] for o in late.values())} dead letters: calls that failed while "
                    f"cut); batches {sorted(o[0] for o in late.values())}")

        ctx["after_fault"] = after
        ctx["on_settled"] = settled

    row = cl.run(f"cut {victim.name}", procs, hosts, cfg.fault_headlines, fault, settle=True)
    log(f"  {row.scenario}: {row.wall_s:.1f}s, lost {row.lost}, dup {row.duplicated}, "
        f"dead {row.dead}; {row.detail.get('held_batches_finished_elsewhere')} held batches "
        f"finished elsewhere")
    return row


def redis_outage(cl: Cluster, log: Callable[[str], None]) -> Row:
    """Redis unreachable from every host for ``cfg.outage_s``, then back."""
    cfg = cl.cfg
    hosts = cl.worker_hosts
    procs = cfg.fault_procs_per_host * len(hosts)

    def fault(row: Row, ctx: dict) -> None:
        cl.lab.cut(cl.redis_host)
        t0 = time.monotonic()
        log(f"  redis host cut ({cl.redis_host.veth} down) for {cfg.outage_s:.0f}s")
        while time.monotonic() - t0 < cfg.outage_s:
            time.sleep(0.5)
        cl.lab.heal(cl.redis_host)
        ctx["healed_wall"] = time.time()
        row.detail["outage_s"] = round(time.monotonic() - t0, 1)
        t_back = time.monotonic()
        wait_until(lambda: cl.observer().ping(), 60, "redis after the outage")
        row.detail["harness_reconnect_s"] = round(time.monotonic() - t_back, 1)
        log(f"  redis host reconnected after {row.detail['outage_s']}s")
        row.notes.append(f"Redis unreachable from all hosts for {row.detail['outage_s']}s")

        def after() -> None:
            row.notes.append(f"first batch recorded {row.detail.get('resumed_s', '?')}s after "
                             "Redis came back")

        ctx["after_fault"] = after

    row = cl.run("redis outage", procs, hosts, cfg.fault_headlines, fault, settle=True)
    log(f"  {row.scenario}: {row.wall_s:.1f}s, lost {row.lost}, dup {row.duplicated}, "
        f"dead {row.dead}")
    return row


# -- the whole run -----------------------------------------------------------------------------
@dataclass
class Report:
    cfg: MultiConfig
    rows: list[Row] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    seconds: float = 0.0
    load_at_start: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.errors and not self.leftovers and all(r.ok for r in self.rows)


def run_all(cfg: MultiConfig, log: Callable[[str], None] = print,
            only: tuple[str, ...] = ("scale", "cut", "outage")) -> Report:
    """Build the lab, run the scenarios, tear everything down (always)."""
    reason = netns_unavailable()
    if reason:
        raise RuntimeError(reason)
    rep = Report(cfg, load_at_start=os.getloadavg()[0])
    base = cfg.work_dir / f"mh-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    t0 = time.monotonic()
    lab = Lab(log=log)
    try:
        lab.open()
        cl = Cluster(lab, cfg, base, log)
        log(f"lab {lab.ns_prefix}*: redis {cl.redis_host.ip}, llm {cl.llm_host.ip}, producer "
            f"{cl.producer_host.ip}, workers {', '.join(h.ip for h in cl.worker_hosts)}; "
            f"files in {base}")
        cl.start_services()
        steps: list[tuple[str, Callable[[], Row]]] = []
        if "scale" in only:
            steps += [(f"scale {p}", lambda p=p: scaling(cl, p, log)) for p in cfg.scale]
        if "cut" in only:
            steps.append(("cut", lambda: cut_worker_host(cl, log)))
        if "outage" in only:
            steps.append(("outage", lambda: redis_outage(cl, log)))
        for name, step in steps:
            try:
                rep.rows.append(step())
            except (RuntimeError, TimeoutError, OSError, redis.RedisError) as e:
                rep.errors.append(f"{name}: {type(e).__name__}: {e}"[:3000])
                log(f"  {name} FAILED: {e}"[:3000])
    finally:
        lab.close()
        rep.leftovers = lab.leftovers()
        rep.seconds = time.monotonic() - t0
    if rep.ok and not cfg.keep:
        shutil.rmtree(base, ignore_errors=True)
    else:
        log(f"logs and results kept in {base}")
    return rep


# -- reporting ---------------------------------------------------------------------------------
COLUMNS = ("scenario", "headlines", "worker procs / hosts", "wall s", "headlines/s",
           "% of ideal", "lost", "duplicated", "dead-lettered", "ledger = store")


def cells(r: Row) -> list[str]:
    return [r.scenario, str(r.headlines), f"{r.procs} / {r.hosts}", f"{r.wall_s:.1f}",
            f"{r.rate:.1f}", f"{r.pct:.0f}% of {r.ideal:.0f}/s", str(r.lost), str(r.duplicated),
            str(r.dead), "yes" if r.store_matches_ledger else "NO"]


def table(rep: Report) -> Table:
    c = rep.cfg
    t = Table(title=f"multi-host (network namespaces): endpoint at {c.latency * 1000:.0f} ms, "
                    f"{c.concurrency} requests in flight per process, {os.cpu_count()} cores")
    for col in COLUMNS:
        t.add_column(col, justify="left" if col == "scenario" else "right")
    for r in rep.rows:
        t.add_row(*cells(r))
    return t


def write_markdown(rep: Report, command: str, path: Path) -> None:
    c = rep.cfg
    lines = [
        "# Multi-host harness: the pipeline across network-namespace hosts", "",
        recorded_line(), "",
        f"Command: `{command}`", "",
        f"Machine: {os.cpu_count()} CPU cores shared with other jobs (1-minute load average "
        f"{rep.load_at_start:.2f} at the start), Python {sys.version.split()[0]}. Hosts are "
        "Linux network namespaces on one bridge (`benchmarks/netns.py`): Redis (password, "
        "bound to its own address), the fake endpoint (`tests/fake_llm.py`), the producer "
        f"(`python -m tickertag produce`) and {c.worker_hosts} worker hosts, each its own "
        "namespace; the result store is a directory all hosts share.", "",
        f"Settings: endpoint latency {c.latency * 1000:.0f} ms fixed; "
        f"{c.concurrency} requests in flight per worker process (`TICKERTAG_CONCURRENCY`), "
        f"{c.threads} Celery threads per process, batches of {c.batch_size}; visibility timeout "
        f"{c.visibility_timeout_s} s, batch lease {c.batch_lease_s:g} s, request timeout "
        f"{c.request_timeout_s:g} s, {c.max_retries} retries. Ideal = processes x "
        f"{c.concurrency} / {c.latency:g} s. Wall time runs from the first batch enqueued to "
        "the last one recorded (ledger timestamps), so it excludes process start-up; in the "
        "fault runs it includes the fault.", "",
        f"Verdict: **{'PASS' if rep.ok else 'FAIL'}** (every run complete, 0 lost, "
        "0 duplicated, ledger `enqueued = done + dead`; no namespace or link left behind).", "",
        "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS),
        *["| " + " | ".join(cells(r)) + " |" for r in rep.rows], "",
        "Lost = source headlines with neither a result nor a dead letter; duplicated = repeated "
        "result keys, repeated ids, or a headline that is both a result and a dead letter. In "
        "the fault runs both are the worse of two audits: when the run completed, and again "
        "after the faulted host was reconnected and every stalled batch had ended. "
        "`ledger = store`: the ledger's done / dead counts equal the results / dead letters in "
        "the store (a stale copy of a batch rewriting its shard after the batch was recorded "
        "breaks this without losing or duplicating a headline).", "",
    ]
    notes = [f"{r.scenario}: {n}" for r in rep.rows for n in r.notes] + rep.errors
    if rep.leftovers:
        notes.append(f"left behind: {rep.leftovers}")
    if notes:
        lines += ["Notes:", "", *[f"- {n}" for n in notes], ""]
    lines += ["Raw numbers:", "", "```json",
              json.dumps([{**asdict(r), "pct_of_ideal": round(r.pct, 1)} for r in rep.rows],
                         indent=1, default=str), "```", ""]
    path.write_text("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="1 and 2 processes over 2 worker hosts, smaller runs (~2 minutes)")
    ap.add_argument("--only", nargs="+", choices=("scale", "cut", "outage"),
                    default=["scale", "cut", "outage"])
    ap.add_argument("--outage-s", type=float, default=None)
    ap.add_argument("--keep", action="store_true", help="keep logs and results in var/multihost")
    ap.add_argument("--out", type=Path, default=RESULTS_MD, help="markdown report ('-': none)")
    a = ap.parse_args()
    over: dict[str, Any] = {"keep": a.keep}
    if a.outage_s is not None:
        over["outage_s"] = a.outage_s
    cfg = MultiConfig.quick(**over) if a.quick else MultiConfig(**over)
    console = Console(width=None if sys.stdout.isatty() else 160)
    sigterm_as_interrupt()
    try:
        rep = run_all(cfg, log=console.print, only=tuple(a.only))
    except KeyboardInterrupt:
        left = [n for n in list_netns() if n.startswith(f"tt-{os.getpid()}-")]
        console.print("[red]interrupted[/]: " + (f"left behind: {left}" if left else
                                                  "every process, namespace and link removed"))
        sys.exit(130)
    console.print(table(rep))
    for r in rep.rows:
        for n in r.notes:
            console.print(f"[yellow]note[/] {r.scenario}: {n}")
    for e in rep.errors:
        console.print(f"[red]error[/] {e}")
    if str(a.out) != "-":
        py = os.path.relpath(PY, ROOT) if PY.startswith(str(ROOT)) else "python"
        nice = f"nice -n {os.nice(0)} " if os.nice(0) > 0 else ""
        command = " ".join([f"{nice}{py} benchmarks/multihost.py", *sys.argv[1:]])
        write_markdown(rep, command, a.out)
        console.print(f"wrote {a.out}")
    console.print(f"{'[bold green]PASS' if rep.ok else '[bold red]FAIL'}[/] in {rep.seconds:.0f}s")
    sys.exit(0 if rep.ok else 1)


if __name__ == "__main__":
    main()
