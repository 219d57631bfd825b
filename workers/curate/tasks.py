"""The ``curate`` queue's tasks: curate a finished run, then build its alias table."""

from __future__ import annotations

from typing import Any

from common.celery_app import app
from common.settings import get_settings
from common.task_names import CURATE_TASK, LINK_TASK
from workers.curate.pipeline import curate_run, link_run
from workers.curate.sampling import SampleOptions


@app.task(name=CURATE_TASK)
def curate_task(run_id: str, options: dict | None = None) -> dict[str, Any]:
    """Celery entry point: JSON arguments in, the JSON report out; the link step follows on
    the same queue."""
    report = curate_run(run_id, SampleOptions(**(options or {})), get_settings())
    app.send_task(LINK_TASK, args=[run_id], queue="curate", routing_key="curate")
    return report


@app.task(name=LINK_TASK)
def link_task(run_id: str) -> dict[str, Any]:
    return link_run(run_id, get_settings())
