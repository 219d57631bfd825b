"""The ``review`` queue: push a run's curated splits to Argilla, pull reviewed spans back.

Thin shells over ``workers.review.argilla``: JSON arguments in, the JSON report out. Pull is cheap and
idempotent, so a beat schedule or a cron can call ``tickertag.review.pull`` every few minutes
while review is under way and training always finds the latest ``reviewed/`` files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common.celery_app import app
from common.task_names import REVIEW_PULL_TASK, REVIEW_PUSH_TASK
from workers.review.argilla import pull, push
from workers.review.argilla_settings import ArgillaSettings
from workers.review.records import SPLITS


@app.task(name=REVIEW_PUSH_TASK)
def push_task(run_id: str, input_dir: str | None = None,
              splits: list[str] | None = None) -> dict[str, Any]:
    """Create or update the run's Argilla datasets (no duplicates on a second push)."""
    return push(run_id, Path(input_dir) if input_dir else None, tuple(splits or SPLITS),
                ArgillaSettings())


@app.task(name=REVIEW_PULL_TASK)
def pull_task(run_id: str, out_dir: str | None = None,
              splits: list[str] | None = None) -> dict[str, Any]:
    """Write ``reviewed/{split}.jsonl`` from the submitted responses; return progress."""
    return pull(run_id, Path(out_dir) if out_dir else None, tuple(splits or SPLITS),
                ArgillaSettings())
