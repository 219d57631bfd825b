"""Shares of one computation in forked children, their results back through pipes.

Why ``os.fork`` rather than ``multiprocessing``: the callers hold large read-only inputs (a
million names and their block index) that a forked child sees without copying or pickling,
and clustering runs inside Celery's prefork workers, whose processes are daemonic, where
``multiprocessing`` refuses to start children. Nothing is lost when a child fails: its share
is computed again in the calling process, and the result is the same, only later.
"""

from __future__ import annotations

import logging
import os
import pickle
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import TypeVar

S = TypeVar("S")
R = TypeVar("R")
log = logging.getLogger(__name__)


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS tells)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def map_forked(fn: Callable[[S], R], shares: Sequence[S]) -> list[R]:
    """``[fn(s) for s in shares]``, the first share in this process and each other one in a
    forked child at the same time. ``fn``'s result must pickle. Where ``os.fork`` does not
    exist, or for a single share, everything runs here."""
    if len(shares) < 2 or not hasattr(os, "fork"):
        return [fn(s) for s in shares]
    sys.stdout.flush()
    sys.stderr.flush()  # a child must not write the parent's buffered output again
    children = [(_start(fn, share), share) for share in shares[1:]]
    results = [fn(shares[0])]
    for (pid, fd), share in children:
        results.append(_collect(pid, fd, fn, share))
    return results


def _start(fn: Callable[[S], R], share: S) -> tuple[int, int]:
    r, w = os.pipe()
    pid = os.fork()
    if pid:
        os.close(w)
        return pid, r
    code = 1
    try:  # the child: compute, write, leave without running the parent's exit handlers
        os.close(r)
        with os.fdopen(w, "wb") as out:
            pickle.dump(fn(share), out, protocol=pickle.HIGHEST_PROTOCOL)
        code = 0
    except BaseException:  # reported; the parent computes the share
        traceback.print_exc()
    finally:
        os._exit(code)


def _collect(pid: int, fd: int, fn: Callable[[S], R], share: S) -> R:
    """The child's result, or the share computed here when the child failed."""
    failed = False
    try:
        with os.fdopen(fd, "rb") as inp:
            result = pickle.load(inp)
    except (EOFError, pickle.UnpicklingError, OSError):
        failed = True
    _, status = os.waitpid(pid, 0)
    if failed or status != 0:
        log.warning("forked share failed (wait status %s); computing it here", status)
        return fn(share)
    return result
