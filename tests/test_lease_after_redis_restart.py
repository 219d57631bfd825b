"""A batch lease whose release could not reach Redis (restarting) must not keep blocking the
batch once Redis is back. With persistence the lease survives the restart: before, every copy
of the batch went back to the queue until the lease's TTL ran out (30 s by default), so runs
recovered from a Redis restart a TTL late (``benchmarks/faults.py --scenario redis-restart``).
A real Redis with AOF on a private port, stopped and restarted on the same data directory."""

from __future__ import annotations

import time
from pathlib import Path

import redis

from common.services import ManagedProcess, free_port, redis_server_binary, wait_until
from workers.batch_task import BatchLease


def _redis(port: int, data: Path, log: Path) -> ManagedProcess:
    argv = [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir",
            str(data), "--appendonly", "yes", "--appendfsync", "always", "--save", ""]
    proc = ManagedProcess("redis", argv, log)
    wait_until(lambda: redis.Redis(port=port).ping(), 20, "redis", proc)
    return proc


def test_a_lease_released_while_redis_is_down_is_released_once_it_is_back(tmp_path: Path):
    port, data = free_port(), tmp_path / "data"
    data.mkdir()
    srv = _redis(port, data, tmp_path / "redis.log")
    client = redis.Redis(port=port, socket_timeout=2, socket_connect_timeout=2)
    lease = BatchLease(client, "run-x", "batch-x", ttl_s=30)
    try:
        assert lease.acquire()
        srv.stop()  # SIGTERM: the AOF keeps the lease key
        lease.release()  # the copy hands its batch back while Redis is down
        srv = _redis(port, data, tmp_path / "redis.log")
        deadline = time.monotonic() + 5
        while client.exists(lease.key) and time.monotonic() < deadline:
            time.sleep(0.1)
        # the next copy of the batch can take it now, not 30 s later
        assert not client.exists(lease.key), client.pttl(lease.key)
        assert BatchLease(client, "run-x", "batch-x", ttl_s=30).acquire()
    finally:
        srv.stop()


def test_a_late_release_never_frees_a_lease_another_copy_holds(tmp_path: Path, monkeypatch):
    """The retried release deletes only its own token: a copy that took the lease (it lapsed)
    before the retry reached Redis keeps it. Redis is "down" for the releasing client only,
    so the takeover surely comes between the failed release and its retry."""
    import workers.batch_task as bt

    monkeypatch.setattr(bt, "RELEASE_RETRY_S", 0.2)
    port, data = free_port(), tmp_path / "data"
    data.mkdir()
    srv = _redis(port, data, tmp_path / "redis.log")
    client = redis.Redis(port=port, socket_timeout=2, socket_connect_timeout=2)
    other = redis.Redis(port=port)
    first = BatchLease(client, "run-y", "batch-y", ttl_s=30)
    down = {"now": True, "refused": 0}
    real = client.execute_command

    def execute_command(*args, **kw):
        if down["now"]:
            down["refused"] += 1
            raise redis.ConnectionError("Redis is restarting")
        return real(*args, **kw)

    try:
        assert first.acquire()
        monkeypatch.setattr(client, "execute_command", execute_command)
        first.release()  # unreachable: retried in the background
        other.set(first.key, "another-copy", px=30_000)  # as if the lease lapsed and was taken
        deadline = time.monotonic() + 10
        while down["refused"] < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert down["refused"] >= 2  # the release was tried again, not given up
        down["now"] = False
        time.sleep(1.0)  # several retries reach Redis now
        assert other.get(first.key) == b"another-copy"
    finally:
        srv.stop()
