"""Every Celery task name, and the queue each goes to, without importing Celery.

Task names are ``tickertag.<queue>.<what>`` and are routed by that prefix (``common.celery_app``),
so the producer, the CLI, run pricing and the tests can name a task or ask its queue without
building the Celery app (which connects to the broker's settings on import).
"""

from __future__ import annotations

STAGES = ("annotate", "curate", "review", "train", "ner")

ANNOTATE_TASK = "tickertag.annotate.batch"
NER_TASK = "tickertag.ner.batch"
CURATE_TASK = "tickertag.curate.run"
LINK_TASK = "tickertag.curate.link"  # after curation: the run's alias table (names -> tickers)
REVIEW_PUSH_TASK = "tickertag.review.push"
REVIEW_PULL_TASK = "tickertag.review.pull"
TRAIN_TASK = "tickertag.train.run"


def queue_of(task: str) -> str:
    """The queue (stage) a task goes to."""
    return task.split(".")[1]
