"""The lost-batch sweep, run in the background of every worker (``workers.lost`` says why).

One thread per worker process wakes every ``settings.lost_batch_sweep_s``; a Redis lock that
lives one interval lets only one worker in the cluster sweep per interval, so adding workers
adds no load on Redis. A sweep that fails (Redis restarting) is logged and tried again at the
next wake-up: the sweep is a safety net, never a reason for a worker to stop.
"""

from __future__ import annotations

import threading
import uuid

import redis
from celery.utils.log import get_logger

from common import redis_keys
from common.settings import get_settings

log = get_logger(__name__)  # not a task logger: no task id to show ("???[???]")

LOCK_KEY = f"{redis_keys.PREFIX}:lost-sweep:lock"
_started = threading.Event()


def sweep_once(token: str) -> dict:
    """One cluster-wide sweep if this worker wins the interval's lock; returns its reports."""
    from common.celery_app import app
    from workers.lost import DEFAULT_UNACKED_KEY, sweep_all

    s = get_settings()
    client = redis.Redis.from_url(s.redis_dsn(), decode_responses=True,
                                  socket_timeout=s.redis_socket_timeout_s)
    ttl_ms = max(1000, int(s.lost_batch_sweep_s * 1000 * 0.9))
    if not client.set(LOCK_KEY, token, nx=True, px=ttl_ms):
        return {}
    unacked = (app.conf.broker_transport_options or {}).get("unacked_key", DEFAULT_UNACKED_KEY)
    reports = sweep_all(app, client, grace_s=s.lost_batch_sweep_s, unacked_key=unacked)
    for run_id, rep in reports.items():
        if rep.resent:
            log.warning("run %s: %d batch(es) the broker lost sent again: %s", run_id,
                        len(rep.resent), ", ".join(rep.resent))
        if rep.curate_sent:
            log.warning("run %s: finished, its curate message never sent: sent now", run_id)
    return reports


def _loop(interval: float, stop: threading.Event) -> None:
    token = uuid.uuid4().hex
    while not stop.wait(interval):
        try:
            sweep_once(token)
        except Exception as e:  # a safety net must not take the worker down
            log.warning("lost-batch sweep failed (%s); next try in %.0f s", e, interval)


def start(**_: object) -> threading.Event | None:
    """``worker_ready`` handler: start the sweep thread once per process (None if turned off)."""
    interval = get_settings().lost_batch_sweep_s
    if interval <= 0 or _started.is_set():
        return None
    _started.set()
    stop = threading.Event()
    threading.Thread(target=_loop, args=(interval, stop), name="lost-batch-sweep",
                     daemon=True).start()
    return stop
