"""The pipeline across hosts made of network namespaces (``benchmarks/multihost.py``,
quick size): throughput with 1 and 2 worker processes on 2 worker hosts, a worker host cut off
mid-batch, Redis unreachable from every host for 30 s; nothing lost, nothing duplicated, and
nothing (process, namespace, link) left behind, also when the harness is stopped by a signal
or was SIGKILLed earlier."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.multihost import MultiConfig, Report, run_all  # noqa: E402
from benchmarks.netns import Lab, clean_stale, list_links, list_netns, netns_unavailable  # noqa: E402

UNAVAILABLE = netns_unavailable()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(UNAVAILABLE is not None, reason=f"no network namespaces: {UNAVAILABLE}"),
]


def _ours(pid: int) -> list[str]:
    return [n for n in list_netns() if n.startswith(f"tt-{pid}-")] + [
        link for link in list_links() if link.startswith(f"tt{pid}") and
        link[len(f"tt{pid}"):][:1] in ("b", "v", "p")]


@pytest.mark.timeout(600)
def test_quick_multihost_run_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    rep: Report = run_all(MultiConfig.quick(work_dir=tmp_path, keep=True))
    detail = json.dumps({"errors": rep.errors, "rows": [r.__dict__ for r in rep.rows]},
                        default=str)[:20000]
    print(detail)
    assert not rep.errors, detail
    assert [r.scenario.split()[0] for r in rep.rows] == ["scale", "scale", "cut", "redis"]
    for r in rep.rows:
        assert r.completed and r.ledger_ok, detail
        assert r.lost == 0 and r.duplicated == 0, detail
    one, two = rep.rows[0], rep.rows[1]
    assert (one.procs, one.hosts, two.procs, two.hosts) == (1, 1, 2, 2)
    # whether a second process on a second host adds throughput is the benchmark's table
    # (benchmarks/multihost.py, benchmarks/RESULTS_multihost.md), not this test's
    cut = rep.rows[2]
    assert cut.detail["batches_held_by_cut_host"] >= 1, detail
    # every batch the cut host held was redelivered and finished by the other host
    assert cut.detail["held_batches_finished_elsewhere"] == cut.detail[
        "batches_held_by_cut_host"], detail
    outage = rep.rows[3]
    assert outage.detail["outage_s"] >= 30, detail
    assert not rep.leftovers and not _ours(os.getpid())
    # the cut host's stalled copy must not rewrite a batch another host recorded (it did,
    # until the batch fence: workers/batch_task.make_fence)
    assert all(r.store_matches_ledger for r in rep.rows), [r.notes for r in rep.rows]


def test_lab_cleans_up_on_error(tmp_path: Path) -> None:
    lab = Lab(log=print)
    procs = []
    with pytest.raises(RuntimeError, match="boom"), lab:
        a = lab.add_host("a")
        b = lab.add_host("b")
        procs.append(lab.start(a, "sleeper", ["sleep", "300"], tmp_path / "a.log"))
        procs.append(lab.start(b, "sleeper", ["sleep", "300"], tmp_path / "b.log"))
        assert len(_ours(os.getpid())) == 2 + 3  # 2 namespaces, bridge and 2 veths
        raise RuntimeError("boom")
    assert all(not p.alive() for p in procs)
    assert not _ours(os.getpid()) and not lab.leftovers()


def test_stale_namespaces_of_a_dead_harness_are_removed() -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    ns, link = f"tt-{dead.pid}-stale", f"tt{dead.pid}br"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    subprocess.run(["ip", "link", "add", link, "type", "bridge"], check=True)
    sleeper = subprocess.Popen(["ip", "netns", "exec", ns, "sleep", "300"])
    try:
        deadline = time.monotonic() + 10  # until the sleeper is inside the namespace
        while str(sleeper.pid) not in subprocess.run(["ip", "netns", "pids", ns],
                                                     capture_output=True, text=True).stdout:
            assert time.monotonic() < deadline and sleeper.poll() is None
            time.sleep(0.05)
        removed = clean_stale(print)
        assert ns in removed and link in removed
        assert ns not in list_netns() and link not in list_links()
        assert sleeper.wait(10) == -signal.SIGKILL  # what ran inside the namespace is gone
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", link], capture_output=True)


@pytest.mark.timeout(240)
def test_harness_stopped_by_sigterm_leaves_nothing(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "benchmarks" / "multihost.py"), "--quick", "--only", "scale",
         "--out", "-"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        # stop it once its workers run: namespaces, Redis, the endpoint and workers all exist
        while time.monotonic() < deadline and proc.poll() is None:
            if len(_ours(proc.pid)) >= 5 and any(
                    "celery" in " ".join(_cmdline(p)) for p in _netns_pids(proc.pid)):
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()[0]
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
            clean_stale(print)
    assert proc.returncode == 130, out
    assert "interrupted" in out, out
    assert not _ours(proc.pid), out


def _netns_pids(owner: int) -> list[int]:
    pids: list[int] = []
    for ns in list_netns():
        if ns.startswith(f"tt-{owner}-"):
            out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
            pids += [int(p) for p in out.stdout.split() if p.isdigit()]
    return pids


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []
