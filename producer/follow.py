"""Produce a source into a run while following the run to its end.

Why one function: the demo and ``tickertag distil`` both feed a queue from a thread and wait for
every batch to end as a result or a dead letter, and both must stop early (with the worker's log)
when a worker they started dies instead of waiting forever.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from common.ledger import RunLedger
from common.progress import Tick
from producer.produce import Producer, ProduceReport


@dataclass
class RunProgress:
    """What a progress bar shows: headlines finished (done + dead) of those enqueued so far."""

    finished: int
    enqueued: int
    done: int
    dead: int
    producing: bool


def step_tick(tick: Tick | None, what: str
              ) -> Callable[[RunProgress], None] | None:
    """A run's progress as one named step of a multi-step command (total unknown while the
    producer is still reading)."""
    if tick is None:
        return None
    return lambda p: tick(what, p.finished, None if p.producing else p.enqueued)


def produce_and_follow(producer: Producer, rows: Iterable[dict[str, Any]], source_name: str,
                       procs: Sequence[Any] = (), on_tick: Callable[[RunProgress], None] | None
                       = None, poll_s: float = 0.5) -> ProduceReport:
    """Run ``producer`` over ``rows`` in a thread; return its report once the run has no batch
    in flight. ``procs`` (``ManagedProcess``-like: ``alive()``, ``name``, ``tail()``) are the
    workers this caller started: if one dies, a ``RuntimeError`` carries its log tail."""
    ledger: RunLedger = producer.ledger
    box: dict[str, Any] = {}

    def _produce() -> None:
        try:
            box["rep"] = producer.run(rows, source_name)
        except Exception as e:  # re-raised in the caller's thread below
            box["error"] = e

    base = ledger.stats()
    base_done = int(base["headlines_done"]) + int(base["headlines_dead"])
    t = threading.Thread(target=_produce, daemon=True)
    t.start()
    while True:
        st = ledger.stats()
        if on_tick:
            on_tick(RunProgress(
                finished=int(st["headlines_done"]) + int(st["headlines_dead"]) - base_done,
                enqueued=int(st["headlines_enqueued"]) - base_done,
                done=int(st["headlines_done"]), dead=int(st["headlines_dead"]),
                producing=t.is_alive()))
        if not t.is_alive() and ledger.in_flight() <= 0:
            break
        for p in procs:
            if not p.alive():
                raise RuntimeError(f"{p.name} died:\n{p.tail()}")
        time.sleep(poll_s)
    if "error" in box:
        raise box["error"]
    return box["rep"]
