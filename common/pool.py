"""A process pool whose workers do not outlive the work they were started for.

``ProcessPoolExecutor`` leaves its workers running in two cases that matter for hour-long
jobs such as a cascade retraining two teachers side by side: the parent is killed (SIGKILL,
or SIGTERM with Python's default handler, which runs no cleanup), and the workers train on,
each holding cores, for the rest of their hour; or the parent is interrupted (Ctrl-C, an
error in another future), and leaving the ``with`` block waits for every running job to end.
Here each worker watches its parent and exits when it is gone, and a parent that stops
waiting ends its workers instead of waiting for them.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing import get_context

WATCH_S = 1.0  # how often a worker checks that its parent is alive


def _exit_with(parent: int) -> None:
    while os.getppid() == parent:  # an orphan is adopted by init (or a subreaper)
        time.sleep(WATCH_S)
    os._exit(1)  # nothing of a job cut short is worth flushing


def _watch_parent(parent: int) -> None:
    """Pool initializer: a daemon thread ends this worker once ``parent`` has died."""
    threading.Thread(target=_exit_with, args=(parent,), daemon=True,
                     name="watch-parent").start()


@contextmanager
def parent_bound_pool(jobs: int) -> Iterator[ProcessPoolExecutor]:
    """``jobs`` spawned workers (no fork of a threaded parent) bound to this process."""
    pool = ProcessPoolExecutor(jobs, mp_context=get_context("spawn"),
                               initializer=_watch_parent, initargs=(os.getpid(),))
    try:
        yield pool
    except BaseException:
        # the executor has no public way to stop running jobs (``terminate_workers`` is
        # Python 3.14's): end its processes, then shut down without waiting for them
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
