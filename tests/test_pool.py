"""A process pool's workers end with the process that started them (``common.pool``): a
cascade killed while its teachers retrain side by side left both trainings running for the
rest of their hour, and a Ctrl-C waited for them to finish. Real processes: a parent Python
process with a one-worker pool whose job sleeps 300 s."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARENT = f"""
import os, sys, time
sys.path.insert(0, {str(ROOT)!r})
from common.pool import parent_bound_pool
with parent_bound_pool(1) as pool:
    print(pool.submit(os.getpid).result(), flush=True)
    pool.submit(time.sleep, 300).result()
"""


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")  # a zombie has stopped; reaping it is its new parent's business


def _wait_gone(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        time.sleep(0.1)
    return _gone(pid)


def _start() -> tuple[subprocess.Popen, int]:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    worker = int(parent.stdout.readline())
    time.sleep(0.5)  # the worker is in its 300 s job now
    assert not _gone(worker)
    return parent, worker


def test_a_pool_worker_exits_when_its_parent_is_killed() -> None:
    parent, worker = _start()
    try:
        parent.kill()  # SIGKILL: no cleanup runs in the parent
        parent.wait(10)
        assert _wait_gone(worker, 10), f"worker {worker} outlived its killed parent"
    finally:
        if not _gone(worker):
            os.kill(worker, signal.SIGKILL)


def test_an_interrupted_parent_ends_its_workers_instead_of_waiting_for_them() -> None:
    parent, worker = _start()
    try:
        parent.send_signal(signal.SIGINT)  # the parent only, as a supervisor's Ctrl-C would
        rc = parent.wait(20)  # before: leaving the pool's block waited the job's 300 s
        assert rc != 0 and "KeyboardInterrupt" in parent.stderr.read()
        assert _wait_gone(worker, 10)
    finally:
        if parent.poll() is None:
            parent.kill()
        if not _gone(worker):
            os.kill(worker, signal.SIGKILL)
