"""The ``train`` queue: long training jobs on GPU (or CPU) hosts.

A job can outlive the broker's visibility timeout, and a late-acked message would then be
redelivered and the job started again, in a loop. So this task acknowledges early
(``acks_late=False``) and tracks its own state in Redis instead: a lock per run id (one job per
run, whichever host picks it), and ``tt:train:<run_id>`` with progress, so ``tickertag status``
and a second submission see that the job is running, done or failed.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import redis

from common.celery_app import app
from common.settings import get_settings
from training.config import TrainConfig

LOCK_TTL_S = 600  # refreshed by every progress update; a dead host frees the run within this


def progress_key(run_id: str) -> str:
    return f"tt:train:{run_id}"


def train_job(run_id: str, config: dict[str, Any], client: redis.Redis) -> dict[str, Any]:
    """Run one training job under a per-run lock, recording progress in Redis."""
    lock_key = f"{progress_key(run_id)}:lock"
    me = f"{socket.gethostname()}:{time.time():.0f}"
    if not client.set(lock_key, me, nx=True, ex=LOCK_TTL_S):
        return {"run_id": run_id, "skipped": f"already running on {client.get(lock_key)}"}
    key = progress_key(run_id)

    def report(p: dict[str, Any]) -> None:
        client.hset(key, mapping={k: json.dumps(v) for k, v in p.items()})
        client.hset(key, "updated_at", time.time())
        client.expire(lock_key, LOCK_TTL_S)

    try:
        report({"status": "started", "host": socket.gethostname(), "config": config})
        from training.runner import run_training

        manifest = run_training(TrainConfig(**config), report)
        report({"status": "done", "output": config.get("output"),
                "valid_f1": manifest.get("valid_f1")})
        return {"run_id": run_id, "output": config.get("output"),
                "valid_f1": manifest.get("valid_f1")}
    except Exception as e:
        report({"status": "failed", "error": f"{type(e).__name__}: {e}"[:2000]})
        raise
    finally:
        client.delete(lock_key)


@app.task(name="tickertag.train.run", acks_late=False, max_retries=0)
def train_run(run_id: str, config: dict[str, Any]) -> dict[str, Any]:
    """Celery entry point: ``config`` is a TrainConfig as a dict (JSON, no secrets)."""
    client = redis.Redis.from_url(get_settings().redis_dsn(), decode_responses=True)
    return train_job(run_id, config, client)
