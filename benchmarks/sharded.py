"""Aggregate throughput of one process per core, each tagging its share of the headlines.

Why one helper: the bulk rows of every benchmark must be timed the same way (spawned
processes, all loaded and warmed before a shared start barrier, wall time from the first start
to the last finish), or their numbers would not compare."""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Callable


def _run(load: Callable, tag: Callable, texts: list[str], start, q) -> None:
    model = load()
    tag(model, texts[:8])  # warm-up before the clock starts
    start.wait()
    t0 = time.perf_counter()
    tag(model, texts)
    q.put((len(texts), t0, time.perf_counter()))


def sharded_rate(load: Callable, tag: Callable, texts: list[str], processes: int,
                 timeout: float = 1800) -> float:
    """Headlines/s of ``processes`` workers splitting ``texts``; ``load()`` builds a model in the
    worker and ``tag(model, texts)`` tags a list (both module-level: they are pickled)."""
    ctx = mp.get_context("spawn")
    start, q = ctx.Barrier(processes + 1), ctx.Queue()
    procs = [ctx.Process(target=_run, args=(load, tag, texts[k::processes], start, q))
             for k in range(processes)]
    for p in procs:
        p.start()
    start.wait()
    got = [q.get(timeout=timeout) for _ in procs]
    for p in procs:
        p.join()
    return sum(g[0] for g in got) / (max(g[2] for g in got) - min(g[1] for g in got))
