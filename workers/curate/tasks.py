"""The ``curate`` queue's tasks: curate a finished run, then build its alias table.

A run that cannot be curated (``EmptyCuration``: no dates, only invalid answers...) is a
fact about its data, not a fault of the worker: the task logs one error line, the cause is in
``curated/error.json`` and the task ends FAILED with that message in the result backend. It is
acknowledged like any finished task (never redelivered, never retried: the same data would
fail the same way), and the link step is not started.
"""

from __future__ import annotations

from typing import Any

from celery.utils.log import get_task_logger

from common.celery_app import app
from common.publish import publish
from common.settings import get_settings
from common.task_names import CURATE_TASK, LINK_TASK
from workers.curate.pipeline import EmptyCuration, curate_run, link_run
from workers.curate.sampling import SampleOptions

log = get_task_logger(__name__)


# ``throws``: an expected failure, logged by Celery without a traceback.
@app.task(name=CURATE_TASK, throws=(EmptyCuration,))
def curate_task(run_id: str, options: dict | None = None) -> dict[str, Any]:
    """Celery entry point: JSON arguments in, the JSON report out; the link step follows on
    the same queue."""
    try:
        report = curate_run(run_id, SampleOptions(**(options or {})), get_settings())
    except EmptyCuration as e:
        log.error("curate %s: nothing curated (%s): %s", run_id, e.cause, e)
        raise
    publish(app, LINK_TASK, [run_id])
    return report


@app.task(name=LINK_TASK)
def link_task(run_id: str) -> dict[str, Any]:
    return link_run(run_id, get_settings())
