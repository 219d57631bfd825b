"""The ``ner`` queue's task: one batch through the compact model, under the shared batch-task
path (``workers.batch_task``)."""

from __future__ import annotations

from typing import Any

from common.celery_app import app
from common.task_names import NER_TASK
from workers.batch_task import BatchTask
from workers.ner.batch import tag_batch


@app.task(name=NER_TASK, bind=True, base=BatchTask, max_retries=3)
def ner_batch(self, run_id: str, batch_id: str, headlines: list[dict], model_dir: str = "",
              threshold: float | None = None, fingerprint: str | None = None) -> dict[str, Any]:
    return self.guard(run_id, batch_id, headlines,
                      lambda _s, fence: tag_batch(run_id, batch_id, headlines, model_dir,
                                                  threshold, fence, fingerprint),
                      requeue_kwargs={"model_dir": model_dir, "threshold": threshold,
                                      "fingerprint": fingerprint})
