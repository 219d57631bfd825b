"""Aggregate throughput of one process per core, each tagging its share of the headlines.

Why one helper: the bulk rows of every benchmark must be timed the same way (spawned
processes, all loaded and warmed before a shared start signal, wall time from the first start
to the last finish), or their numbers would not compare."""

from __future__ import annotations

import multiprocessing as mp
import queue
import time
from collections.abc import Callable


def _run(load: Callable, tag: Callable, texts: list[str], ready, start, q) -> None:
    model = load()
    tag(model, texts[:8])  # warm-up before the clock starts
    ready.put(True)
    start.wait()
    t0 = time.perf_counter()
    tag(model, texts)
    q.put((len(texts), t0, time.perf_counter()))


def sharded_rate(load: Callable, tag: Callable, texts: list[str], processes: int,
                 timeout: float = 1800) -> float:
    """Headlines/s of ``processes`` workers splitting ``texts``; ``load()`` builds a model in the
    worker and ``tag(model, texts)`` tags a list (both module-level: they are pickled)."""
    ctx = mp.get_context("spawn")
    ready, start, q = ctx.Queue(), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_run, args=(load, tag, texts[k::processes], ready, start, q))
             for k in range(processes)]
    for p in procs:
        p.start()
    loaded = 0
    while loaded < processes:  # a worker that dies while loading fails the row, not hangs it
        try:
            loaded += ready.get(timeout=5)
        except queue.Empty:
            dead = [p.exitcode for p in procs if p.exitcode is not None]
            if dead:
                raise RuntimeError(f"a tagging process exited ({dead}) before the start") from None
    start.set()
    got = [q.get(timeout=timeout) for _ in procs]
    for p in procs:
        p.join()
    return sum(g[0] for g in got) / (max(g[2] for g in got) - min(g[1] for g in got))
