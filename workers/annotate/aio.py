"""One asyncio event loop per worker process, shared by all of its task threads.

Celery 5 has no async tasks. Running ``asyncio.run`` in each task would give each batch its
own loop, so a per-process cap on in-flight LLM requests (an ``asyncio.Semaphore``) could not be
shared between the batches a worker runs at once. Instead every task thread submits its
coroutine to this loop and waits for the result; clients and the semaphore are created inside
the loop that uses them. The loop is created lazily per PID, so prefork children get their own.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_state: dict[str, Any] = {"pid": None, "loop": None}
_semaphores: dict[tuple[int, int], asyncio.Semaphore] = {}


def _loop() -> asyncio.AbstractEventLoop:
    with _lock:
        if _state["pid"] != os.getpid() or _state["loop"] is None:
            loop = asyncio.new_event_loop()
            t = threading.Thread(target=loop.run_forever, name="tickertag-aio", daemon=True)
            t.start()
            _state.update(pid=os.getpid(), loop=loop)
            _semaphores.clear()
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
