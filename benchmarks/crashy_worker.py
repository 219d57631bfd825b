"""A Celery app for ``benchmarks/faults.py``'s poison scenario: the real workers, except that a
batch holding a headline marked ``#poison`` kills its process with SIGSEGV, as a crashing native
library (a tokenizer, an ONNX kernel) would. Nothing can catch it: only the broker's
redelivery and the batch task's delivery count see it.

Start it as ``celery -A benchmarks.crashy_worker worker -Q annotate`` (what the scenario does).
"""

from __future__ import annotations

import os
import signal
from typing import Any

from common.celery_app import app  # noqa: F401  (celery -A finds the app here)
from workers.annotate import tasks as annotate

_real_run_batch = annotate.run_batch


def _crashing_run_batch(run_id: str, bid: str, headlines: list[dict], *a: Any, **k: Any) -> dict:
    if any("#poison" in h.get("text", "") for h in headlines):
        os.kill(os.getpid(), signal.SIGSEGV)
    return _real_run_batch(run_id, bid, headlines, *a, **k)


annotate.run_batch = _crashing_run_batch
