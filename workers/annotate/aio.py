"""One asyncio event loop per worker process, shared by all of its task threads.

Celery 5 has no async tasks. Running ``asyncio.run`` in each task would give each batch its
own loop, so a per-process cap on in-flight LLM requests (an ``asyncio.Semaphore``) could not be
shared between the batches a worker runs at once. Instead every task thread submits its
coroutine to this loop and waits for the result; clients and the semaphore are created inside
the loop that uses them. The loop is created lazily per PID, so prefork children get their own.

Clients live as long as the loop (``loop_shared``): a batch that opened its own Redis pool and
HTTP session paid for a fresh TCP connection per request it made (most of a worker's CPU at
0 ms endpoint latency, ``benchmarks/dispatch.py``); batches on the process loop now share them.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import threading
from collections.abc import Callable, Coroutine, Hashable
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_state: dict[str, Any] = {"pid": None, "loop": None}
_semaphores: dict[tuple[int, int], asyncio.Semaphore] = {}
_shared: dict[Hashable, Any] = {}


def _loop() -> asyncio.AbstractEventLoop:
    with _lock:
        if _state["pid"] != os.getpid() or _state["loop"] is None:
            loop = asyncio.new_event_loop()
            t = threading.Thread(target=loop.run_forever, name="tickertag-aio", daemon=True)
            t.start()
            _state.update(pid=os.getpid(), loop=loop)
            _semaphores.clear()
            _shared.clear()
        return _state["loop"]


def run(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """Run a coroutine on the process loop from any thread and wait for its result."""
    return asyncio.run_coroutine_threadsafe(coro, _loop()).result(timeout)


def process_semaphore(limit: int) -> asyncio.Semaphore:
    """The per-process cap on concurrent requests, one per running loop (normally the process
    loop; a caller using its own ``asyncio.run`` gets its own)."""
    key = (id(asyncio.get_running_loop()), limit)
    sem = _semaphores.get(key)
    if sem is None:
        sem = _semaphores[key] = asyncio.Semaphore(max(1, limit))
    return sem


def loop_shared(key: Hashable, make: Callable[[], T]) -> T | None:
    """The object ``make()`` built for ``key`` on the process loop, built on first use and kept
    for the life of the process; None when the caller runs on a loop of its own (an
    ``asyncio.run`` in a test or a tool): that caller opens and closes its own clients, since
    they would not outlive its loop. Only the loop's thread touches the cache: no lock."""
    if asyncio.get_running_loop() is not _state["loop"]:
        return None
    obj = _shared.get(key)
    if obj is None:
        obj = _shared[key] = make()
    return obj


@atexit.register
def close_shared() -> None:
    """Close what the process loop kept (``loop_shared`` objects with an async ``close``), so
    a worker that exits closes its sessions instead of aiohttp warning about them."""
    loop = _state["loop"]
    if loop is None or _state["pid"] != os.getpid() or not _shared or not loop.is_running():
        return
    kept = list(_shared.values())
    _shared.clear()

    async def close_all() -> None:
        for obj in kept:
            with contextlib.suppress(Exception):  # exiting: a close that fails changes nothing
                await obj.close()

    with contextlib.suppress(Exception):
        asyncio.run_coroutine_threadsafe(close_all(), loop).result(5)
