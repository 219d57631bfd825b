"""A producer rides out 30 s of a Redis that answers nothing (a cut link, a paused host) at any
step of its loop, not only while it waits for room in the broker.

Before, a claim or a publish caught by the silence ended the producer with ``Timeout reading
from …`` after redis-py's own retries (about 20 s; ``benchmarks/multihost.py``'s outage, where
the Redis host is cut off for 30 s). A private real Redis paused with SIGSTOP stands in for the
cut link: the kernel still takes the bytes, nothing is answered, and what was sent before the
pause is applied when it resumes, so a claim whose reply was lost is retried against a claim
that landed.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest
import redis

from common.celery_app import make_app  # its module app is built now, on the suite's Redis
from common.ledger import RunLedger
from common.services import ManagedProcess, free_port, redis_server_binary, wait_until
from producer.produce import Producer, ProduceReport

SILENT_S = 30.0  # longer than redis-py's retries against a silent server (4 x 5 s + backoff)


def _redis(port: int, log: Path) -> ManagedProcess:
    argv = [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no"]
    proc = ManagedProcess("redis", argv, log)
    wait_until(lambda: redis.Redis(port=port).ping(), 20, "redis", proc)
    return proc


def _rows(n: int) -> list[dict[str, Any]]:
    return [{"title": f"Silent Company {i} Raises Guidance", "date": "2015-03-02",
             "stock_symbol": "A"} for i in range(n)]


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_producer_outlasts_a_silent_redis_mid_run(tmp_path: Path, make_settings,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from common import settings as settings_mod

    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    srv = _redis(port, tmp_path / "redis.log")
    monkeypatch.setenv("TICKERTAG_REDIS_URL", url)
    monkeypatch.setenv("TICKERTAG_REDIS_SOCKET_TIMEOUT_S", "2")
    settings_mod.get_settings.cache_clear()
    resume: list[threading.Timer] = []
    try:
        s = make_settings(redis_url=url, redis_socket_timeout_s=2, batch_size=5,
                          max_batches_in_flight=100, auto_curate=False)

        def pause_after_second_batch(rep: ProduceReport) -> None:
            if rep.batches == 2 and not resume:
                os.kill(srv.pid, signal.SIGSTOP)
                resume.append(threading.Timer(SILENT_S, os.kill, (srv.pid, signal.SIGCONT)))
                resume[0].start()

        rep = Producer(make_app(), s, on_progress=pause_after_second_batch).run(
            _rows(30), "silent.csv")
        assert resume  # Redis was silent, and the run went on (the timer ends just after)
        resume[0].join(10)
        assert not resume[0].is_alive()
        assert (rep.batches, rep.enqueued, rep.duplicates) == (6, 30, 0), rep
        ledger = RunLedger.from_url(url, s.run_id)
        st = ledger.stats()
        assert (st["batches_enqueued"], st["headlines_enqueued"]) == (6, 30)
        assert ledger.pending_batches() == {}  # no batch left claimed and unsent
        assert len(ledger.inflight_copies()) == 6
        assert redis.Redis(port=port).llen("annotate") >= 6  # a repeated publish is harmless
    finally:
        for t in resume:
            t.cancel()
        os.kill(srv.pid, signal.SIGCONT)
        srv.stop()
        settings_mod.get_settings.cache_clear()
