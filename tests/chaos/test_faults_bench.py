"""The fault scenarios at CI size (``benchmarks/faults.py --quick``): real Redis with
AOF, real workers and producers, a real full disk (tmpfs), real SIGKILLs and a real segfault;
each headline audited in the result store."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import faults  # noqa: E402

pytestmark = pytest.mark.slow


def test_each_fault_scenario_loses_nothing_and_runs_nothing_twice(tmp_path, monkeypatch):
    monkeypatch.setattr(faults, "WORK", tmp_path)
    outs = {o.scenario.split()[0]: o for o in faults.run_all("quick", only=(
        "visibility", "store", "redis-tag", "poison", "train-kill"))}
    assert set(outs) == {"1", "2", "3", "4", "5"}
    for o in outs.values():
        assert o.lost == 0 and o.duplicated == 0, o
    vis = outs["1"]
    assert vis.results == vis.headlines and "(max 1 per headline)" in vis.notes[0], vis
    store = outs["2"]
    # the full disk is a real tmpfs (root mounts it): a machine that cannot mount one fails
    # here with the reason instead of passing without the check
    assert not any("skipped" in n for n in store.notes), store.notes
    assert store.faults["ENOSPC in worker logs"] > 0 and store.results == store.headlines
    assert outs["3"].results == outs["3"].headlines
    poison = outs["4"]
    assert poison.faults["worker segfaults"] == 3  # max_deliveries, then no more crashes
    assert "worker_lost (1 batches)" in poison.notes[0]
    assert poison.dead_lettered == poison.recovered > 0 and poison.results == poison.headlines
    train = outs["5"]
    assert train.recovered == 1 and "resumed from a checkpoint: True" in train.notes[0], train
