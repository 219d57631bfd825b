"""Two fault scenarios of ``benchmarks/faults.py`` at CI size, each on its own Redis (AOF),
real workers and the fake endpoint: two producers started at once on one run with overlapping
sources, and Redis shut down and restarted while long batches run. Each headline is audited in
the result store; the ledger, the finalizing and the endpoint's call count are checked too."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import faults  # noqa: E402

pytestmark = pytest.mark.slow


def test_two_producers_with_overlapping_sources_send_each_headline_once(tmp_path, monkeypatch):
    monkeypatch.setattr(faults, "WORK", tmp_path)
    out = faults.two_producers(faults.SIZES["quick"]["two_producers"])
    assert out.lost == 0 and out.duplicated == 0, out
    assert out.results + out.dead_lettered == out.headlines, out
    assert out.faults["producers at once"] == 2, out  # they really ran side by side
    assert out.faults["headlines in both files"] == out.headlines // 2, out
    # ledger batches = batches in the store, headlines enqueued once, finalized once,
    # and the endpoint asked once per headline
    assert out.checks and all(out.checks.values()), out


def test_redis_shutdown_and_restart_mid_batch_loses_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(faults, "WORK", tmp_path)
    out = faults.redis_restart(faults.SIZES["quick"]["redis_restart"])
    assert out.faults["batches running"] == 2, out  # Redis went down in both batches
    assert out.lost == 0 and out.duplicated == 0, out
    assert out.results + out.dead_lettered == out.headlines, out
    assert out.checks and all(out.checks.values()), out
