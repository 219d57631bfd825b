"""One Redis client (one connection pool) per URL, timeout and process, shared by every ledger
in it.

Why: a batch task made three ledgers (the task, its run, the sweep), each with a pool of its
own, so every batch opened new TCP connections to Redis (``benchmarks/dispatch.py``).
"""

from __future__ import annotations

import os
import threading

import redis

_clients: dict[tuple[int, str, float | None], redis.Redis] = {}
_clients_lock = threading.Lock()


def shared_client(url: str, socket_timeout_s: float | None = None) -> redis.Redis:
    """The process's client for ``url``, safe across threads (a forked child makes its own).
    ``socket_timeout_s``: the settings' ``redis_socket_timeout_s``, as Celery's broker gets."""
    key = (os.getpid(), url, socket_timeout_s)
    t = {} if socket_timeout_s is None else {"socket_timeout": socket_timeout_s,
                                              "socket_connect_timeout": socket_timeout_s}
    with _clients_lock:
        if key not in _clients:
            _clients[key] = redis.Redis.from_url(url, decode_responses=True, **t)
        return _clients[key]
