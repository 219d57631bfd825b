"""Hosts made of Linux network namespaces on one machine, for the multi-host harness.

Over 300 lines on purpose: the namespaces, bridge, veths and their teardown are one resource
with one lifecycle; split, the cleanup would be scattered.

A ``Lab`` is a private layer-2 network: one bridge in the root namespace and, per host, a
network namespace joined to the bridge by a veth pair, with an address in a /24 of 10.231.0.0/16
that the lab picks unused and creates itself (the bridge gets ``.1``, so the harness in the root
namespace can watch Redis; the hosts have no default route, so nothing leaves the lab). A host's
link is cut and healed from the root namespace (``ip link set <veth> down|up``). Processes are
started inside a host with ``ip netns exec`` and share the filesystem with every other host.

Everything a lab creates carries its owner's pid: namespaces ``tt-<pid>-<host>``, links
``tt<pid>br`` / ``tt<pid>v<i>`` / ``tt<pid>p<i>`` (interface names have 15 characters at most).
``close()`` (also run by ``with``, by ``atexit`` and on SIGTERM through ``KeyboardInterrupt``)
kills every process it started, then anything still inside its namespaces, then deletes the
namespaces and links. ``clean_stale()``, run when a lab opens, does the same for the leftovers
of a lab whose owner is no longer alive (a harness that was SIGKILLed).

Needs root and iproute2. Used by ``benchmarks/multihost.py`` and ``tests/multihost``.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from common.services import ManagedProcess  # noqa: E402

NS_RE = re.compile(r"^tt-(\d+)-[A-Za-z0-9_.-]+$")
LINK_RE = re.compile(r"^tt(\d+)(?:br|v\d+|p\d+)$")
SUBNET_PREFIX = "10.231"


def _run(argv: Sequence[str], check: bool = True, timeout: float = 15) -> str:
    out = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                         stdin=subprocess.DEVNULL)
    if check and out.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: rc {out.returncode}: {out.stderr.strip()}")
    return out.stdout


def ip(*args: str, check: bool = True) -> str:
    return _run(["ip", *args], check=check)


def netns_unavailable() -> str | None:
    """Why network namespaces cannot be used here, or None when they can (probed for real)."""
    if sys.platform != "linux":
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add)"
    if not shutil.which("ip"):
        return "iproute2 (the ip command) is not installed"
    probe = f"tt-{os.getpid()}-probe"
    try:
        ip("netns", "add", probe)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        return f"ip netns add failed: {e}"
    finally:
        ip("netns", "del", probe, check=False)
    return None


def list_netns() -> list[str]:
    """Names of the named network namespaces (``ip netns list`` adds "(id: N)")."""
    return [line.split()[0] for line in ip("netns", "list", check=False).splitlines()
            if line.strip()]


def list_links() -> list[str]:
    names = []
    for line in ip("-o", "link", "show", check=False).splitlines():
        parts = line.split(":", 2)
        if len(parts) >= 2:
            names.append(parts[1].strip().split("@")[0])
    return names


def netns_pids(ns: str) -> list[int]:
    return [int(p) for p in ip("netns", "pids", ns, check=False).split() if p.isdigit()]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_pids(pids: Sequence[int], sig: int = signal.SIGKILL) -> None:
    for pid in pids:
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def delete_netns(ns: str) -> None:
    """Kill what still runs in ``ns`` (bounded), then delete it."""
    for _ in range(20):
        pids = netns_pids(ns)
        if not pids:
            break
        _kill_pids(pids)
        time.sleep(0.1)
    ip("netns", "del", ns, check=False)


def clean_stale(log: Callable[[str], None] = print) -> list[str]:
    """Delete namespaces and links that an earlier lab left behind: named ``tt-<pid>-...`` /
    ``tt<pid>...`` by a pid that is no longer alive. A live owner's (another harness running
    now) and names in any other form are left alone. Returns what was removed."""
    removed = []
    for ns in list_netns():
        m = NS_RE.match(ns)
        if m and int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1))):
            delete_netns(ns)
            removed.append(ns)
    for link in list_links():
        m = LINK_RE.match(link)
        if m and int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1))):
            ip("link", "del", link, check=False)
            removed.append(link)
    if removed:
        log(f"removed stale namespaces/links of earlier runs: {', '.join(removed)}")
    return removed


def _pick_subnet() -> int:
    """A third octet whose 10.231.K.0/24 no address or route on this machine uses."""
    used = ip("-o", "addr", "show", check=False) + ip("route", "show", "table", "all",
                                                         check=False)
    start = os.getpid() % 200 + 20
    for k in [*range(start, 255), *range(1, start)]:
        if f"{SUBNET_PREFIX}.{k}." not in used:
            return k
    raise RuntimeError(f"no free /24 left in {SUBNET_PREFIX}.0.0/16")


@dataclass
class Host:
    name: str
    ns: str
    ip: str
    veth: str  # the root-namespace end: cut and heal this one

    def argv(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside this host."""
        return ["ip", "netns", "exec", self.ns, *argv]


class Lab:
    """A bridge and a set of namespace hosts; a context manager that always cleans up."""

    def __init__(self, log: Callable[[str], None] = print) -> None:
        self.log = log
        self.pid = os.getpid()
        self.ns_prefix = f"tt-{self.pid}-"
        self.link_prefix = f"tt{self.pid}"
        self.bridge = f"{self.link_prefix}br"
        self.hosts: dict[str, Host] = {}
        self.procs: list[ManagedProcess] = []
        self._namespaces: list[str] = []
        self._links: list[str] = []
        self.octet = 0
        self.closed = False

    # -- setup -------------------------------------------------------------------------------
    def __enter__(self) -> Lab:
        try:
            self.open()
        except BaseException:  # __exit__ is not called when __enter__ fails
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> Lab:
        atexit.register(self.close)
        clean_stale(self.log)
        self.octet = _pick_subnet()
        self._links.append(self.bridge)  # recorded first: cleaned up even if the add fails
        ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        return self

    @property
    def gateway(self) -> str:
        """The bridge's address (the root namespace, where the harness watches from)."""
        return f"{SUBNET_PREFIX}.{self.octet}.1"

    def add_host(self, name: str) -> Host:
        i = len(self.hosts) + 2
        ns = f"{self.ns_prefix}{name}"
        veth, peer = f"{self.link_prefix}v{i}", f"{self.link_prefix}p{i}"
        addr = f"{SUBNET_PREFIX}.{self.octet}.{i}"
        self._namespaces.append(ns)
        ip("netns", "add", ns)
        self._links.append(veth)
        ip("link", "add", veth, "type", "veth", "peer", "name", peer)
        ip("link", "set", peer, "netns", ns)
        ip("-n", ns, "link", "set", peer, "name", "eth0")
        ip("-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
        ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", ns, "link", "set", "eth0", "up")
        ip("link", "set", veth, "master", self.bridge)
        ip("link", "set", veth, "up")
        host = Host(name, ns, addr, veth)
        self.hosts[name] = host
        return host

    # -- processes ---------------------------------------------------------------------------
    def start(self, host: Host, name: str, argv: Sequence[str], log: Path,
              env: dict[str, str] | None = None) -> ManagedProcess:
        """A process inside ``host`` (its own process group, killed by ``close``)."""
        if self.closed:
            raise RuntimeError("lab is closed")
        p = ManagedProcess(name, host.argv(argv), log, env=env)
        self.procs.append(p)
        return p

    # -- faults ------------------------------------------------------------------------------
    def cut(self, host: Host) -> None:
        """Take the host off the network: its link goes down (no carrier on its side)."""
        ip("link", "set", host.veth, "down")

    def heal(self, host: Host) -> None:
        ip("link", "set", host.veth, "up")

    # -- teardown ----------------------------------------------------------------------------
    def close(self) -> None:
        """Kill every process, delete every namespace and link this lab made. Idempotent; a
        Ctrl-C or SIGTERM during it is ignored (it is short and bounded)."""
        if self.closed:
            return
        self.closed = True
        main = threading.current_thread() is threading.main_thread()
        old = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)
               } if main else {}
        try:
            stop_all(self.procs, grace_s=5, log=self.log)
            for ns in self._namespaces:
                delete_netns(ns)
            for link in reversed(self._links):
                if link in list_links():
                    ip("link", "del", link, check=False)
            left = self.leftovers()
            if left:
                self.log(f"lab cleanup left: {left}")
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)
            atexit.unregister(self.close)

    def leftovers(self) -> list[str]:
        """Namespaces and links of this lab that still exist (empty after ``close``)."""
        out = [n for n in list_netns() if n.startswith(self.ns_prefix)]
        for link in list_links():
            m = LINK_RE.match(link)
            if m and m.group(1) == str(self.pid):
                out.append(link)
        return out


def stop_all(procs: Sequence[ManagedProcess], grace_s: float = 5.0,
             log: Callable[[str], None] = print) -> None:
    """SIGTERM every process group at once, SIGKILL what is left after ``grace_s``."""
    for p in procs:
        if p.alive():
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
    deadline = time.monotonic() + grace_s
    for p in procs:
        try:
            p.proc.wait(max(0.05, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        if p.alive():
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                p.proc.wait(5)
            except subprocess.TimeoutExpired:
                log(f"process {p.name} ({p.pid}) did not die")
        try:
            p._log.close()
        except OSError:
            pass


def sigterm_as_interrupt() -> None:
    """SIGTERM raises KeyboardInterrupt in the main thread, so ``finally`` blocks clean up."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)
