"""The ``annotate`` queue's task: decode the arguments, run the batch under the shared
batch-task path (``workers.batch_task``), start curation once the run is complete."""

from __future__ import annotations

from common.celery_app import app
from common.run import Run
from common.task_names import ANNOTATE_TASK
from workers.annotate.batch import run_batch
from workers.batch_task import BatchTask


class AnnotateTask(BatchTask):
    def on_run_finished(self, run: Run) -> None:
        run.maybe_finalize(app)  # curation starts once the run is complete


@app.task(name=ANNOTATE_TASK, bind=True, base=AnnotateTask, max_retries=3)
def annotate_batch(self, run_id: str, batch_id: str, headlines: list[dict]) -> dict:
    """Celery entry point for one batch (arguments are plain JSON: no secrets travel)."""
    return self.guard(run_id, batch_id, headlines,
                      lambda settings, fence: run_batch(run_id, batch_id, headlines, settings,
                                                        fence))
