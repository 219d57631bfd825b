"""A message onto its stage's queue, with a publish retry that outlasts a Redis outage.

Every place that sends a batch uses it: the producer, the dead-letter requeue, and the workers'
lost-batch sweep (``workers.lost``), so a batch is published the same way whoever sends it and
no worker needs the producer to send one again; a finished run's curate and link messages too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from common.outage import outlast
from common.task_names import ANNOTATE_TASK, queue_of

if TYPE_CHECKING:
    from celery import Celery

# Celery's default publish retry gives up after ~1 s, shorter than a Redis restart (AOF load
# included): a producer would die mid-run. A batch published twice is harmless (its outcome is
# recorded once per batch id), so publishing is retried: by kombu for a restart, and around it
# by ``outlast`` for a silent Redis (kombu re-raises an error that persists once a reconnect
# succeeds, and a paused host still accepts connections).
PUBLISH_RETRY = {"max_retries": 40, "interval_start": 0.2, "interval_step": 0.5,
                 "interval_max": 2.0}


def publish(app: Celery, task: str, args: list, kwargs: dict | None = None) -> None:
    """One message to its task's queue (``tickertag.<queue>.<what>`` names the queue), retried
    through a Redis restart or silence: a run's curate or link message lost to an outage would
    leave a finished run never curated."""
    queue = queue_of(task)
    outlast(lambda: app.send_task(task, args=args, kwargs=kwargs or {}, queue=queue,
                                  routing_key=queue, retry=True, retry_policy=PUBLISH_RETRY))


def send_batch(app: Celery, run_id: str, bid: str, headlines: list[dict],
               task: str = ANNOTATE_TASK, kwargs: dict | None = None) -> None:
    """One batch to its stage's queue."""
    publish(app, task, [run_id, bid, headlines], kwargs)
