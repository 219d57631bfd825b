"""``common.forked.map_forked``: shares computed in forked children at once, and a child that
fails costs nothing but time (its share is computed in the caller)."""

from __future__ import annotations

import os

from common.forked import map_forked


def test_each_share_but_the_first_runs_in_another_process():
    out = map_forked(lambda n: (os.getpid(), sum(range(n))), [10, 100, 1000])
    assert [s for _, s in out] == [45, 4950, 499500]
    pids = [p for p, _ in out]
    assert pids[0] == os.getpid() and len(set(pids)) == 3


def test_a_failing_child_has_its_share_computed_by_the_caller(capfd):
    parent = os.getpid()

    def fn(n: int) -> int:
        if os.getpid() != parent:
            raise RuntimeError("child dies")
        return n * 2

    assert map_forked(fn, [1, 2, 3]) == [2, 4, 6]
    assert "child dies" in capfd.readouterr().err  # the child's traceback is reported
