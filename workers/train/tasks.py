"""The ``train`` queue's task (acknowledged on receipt; ``workers.train.jobs`` says why)."""

from __future__ import annotations

from typing import Any

import redis

from common.celery_app import app
from common.settings import get_settings
from common.task_names import TRAIN_TASK
from workers.train.jobs import train_job


@app.task(name=TRAIN_TASK, acks_late=False, reject_on_worker_lost=False, max_retries=0,
          track_started=True)
def train_run(run_id: str, config: dict[str, Any], force: bool = False) -> dict[str, Any]:
    """Celery entry point: ``config`` is a TrainConfig as a dict (JSON, no secrets)."""
    client = redis.Redis.from_url(get_settings().redis_dsn(), decode_responses=True)
    return train_job(run_id, config, client, force)
