"""The Celery application: one broker, one queue per stage, explicit routing keys.

Tasks are named ``tickertag.<queue>.<what>`` and routed by that prefix, so a worker started
with ``-Q annotate`` only ever sees annotation batches, and a GPU host runs ``-Q train``.
Reliability settings are the ones that made redelivery work on Redis: late acks +
reject on worker loss + prefetch 1, so a SIGKILLed worker's batch is redelivered; a visibility
timeout longer than the longest task, so Redis never redelivers a batch that is still running.
JSON only: no pickle from the broker.
"""

from __future__ import annotations

import importlib.util

from celery import Celery
from kombu import Exchange, Queue

from common.settings import get_settings
from common.task_names import STAGES, queue_of

TASK_MODULES = tuple(f"workers.{s}.tasks" for s in STAGES)  # one package per stage
__all__ = ["STAGES", "TASK_MODULES", "app", "make_app", "queue_of"]


def _existing(modules: tuple[str, ...]) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is not None]


def make_app() -> Celery:
    s = get_settings()
    url = s.redis_dsn()
    app = Celery("tickertag", broker=url, backend=url, include=_existing(TASK_MODULES))
    exchange = Exchange("tickertag", type="direct")
    app.conf.update(
        task_queues=[Queue(q, exchange, routing_key=q) for q in STAGES],
        task_default_queue="annotate",
        task_default_exchange="tickertag",
        task_default_routing_key="annotate",
        task_routes={f"tickertag.{q}.*": {"queue": q, "routing_key": q} for q in STAGES},
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # Sweep for abandoned (unacked) messages often enough that a dead worker's batch comes
        # back soon after the visibility timeout, not up to 100 s later (kombu's default).
        broker_transport_options={
            "visibility_timeout": s.visibility_timeout_s,
            "socket_timeout": s.redis_socket_timeout_s,
            "socket_connect_timeout": s.redis_socket_timeout_s,
            "socket_keepalive": True,
            "health_check_interval": 10,
            "unacked_restore_interval": max(1, min(10, s.visibility_timeout_s // 4)),
            "unacked_restore_throttle": 1,
        },
        result_backend_transport_options={"visibility_timeout": s.visibility_timeout_s},
        redis_socket_timeout=s.redis_socket_timeout_s,
        redis_socket_connect_timeout=s.redis_socket_timeout_s,
        result_expires=24 * 3600,
        task_track_started=True,
        worker_send_task_events=True,
        task_send_sent_event=True,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    return app


app = make_app()


def _refuse_evicting_redis(**_: object) -> None:
    """A worker refuses to start on a Redis that may evict its queues (``redis_policy``)."""
    import sys

    import redis

    from common.redis_policy import UnsafeRedis, check_no_eviction

    try:
        check_no_eviction(redis.Redis.from_url(get_settings().redis_dsn()))
    except UnsafeRedis as e:  # signal handlers' exceptions are only logged: exit instead
        print(f"tickertag worker refuses to start: {e}", file=sys.stderr, flush=True)
        raise SystemExit(1) from e


def freeze_startup_heap(**_: object) -> None:
    """Move every object alive once the worker has started (imported modules, clients,
    settings) out of the garbage collector's reach (``gc.freeze``).

    Why: a full collection walks every tracked object, and a worker's startup heap is large;
    each one stopped the worker's event loop for 130-240 ms, delaying all 100 requests in
    flight, about four times in ten seconds at 500 requests/s. Frozen, the same runs' longest
    stall was 69-108 ms, calls took 211-213 ms against 219-222 on a 200 ms endpoint, and two
    processes x 100 held 92-93% of ideal against 86-91% (``benchmarks/dispatch.py --only
    2x100``). Startup objects live as long as the process anyway; a prefork parent freezing
    before it forks also keeps the collector from touching (and copying) shared pages."""
    import gc

    gc.freeze()


def _connect_signals() -> None:
    from celery.signals import worker_init, worker_process_init, worker_ready

    worker_init.connect(_refuse_evicting_redis, weak=False)
    worker_ready.connect(freeze_startup_heap, weak=False)  # the main process, all pools
    worker_process_init.connect(freeze_startup_heap, weak=False)  # each prefork child


_connect_signals()
