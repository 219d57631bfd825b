"""``tickertag serve --workers N``: N service processes behind one port, one model in each.

Why: one service process has one event loop and one model thread. Under 16 concurrent
one-headline clients on 2 cores the event loop's HTTP work and the model thread's calls take
turns on the same interpreter, so the second core serves little; uvicorn's workers (processes
sharing the listening socket, each with its own loop and model) use both. The price is one
model in memory per worker.

uvicorn starts its workers by importing an app factory, so the service's options travel in an
environment variable (``CONFIG_ENV``) as JSON, and the metrics in Prometheus' multiprocess
mode (``workers.ner.metrics``)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from workers.ner.metrics import MULTIPROC_ENV

CONFIG_ENV = "TICKERTAG_SERVE_APP"
FACTORY = "workers.ner.multiproc:app_from_env"


def app_from_env():
    """The service app of one worker process, from the options its parent put in
    ``CONFIG_ENV``."""
    from workers.ner.service import create_app

    return create_app(**json.loads(os.environ[CONFIG_ENV]))


def prepare(options: dict[str, Any]) -> Path:
    """Put ``options`` (``create_app``'s keyword arguments) where the workers read them, and
    give the metrics a multiprocess directory: the user's ``PROMETHEUS_MULTIPROC_DIR``, or a
    new temporary one. Its value files of an earlier run are removed first (Prometheus' own
    rule: a counter would otherwise start from the last run's total)."""
    os.environ[CONFIG_ENV] = json.dumps(options)
    where = os.environ.get(MULTIPROC_ENV) or tempfile.mkdtemp(prefix="tickertag-metrics-")
    path = Path(where)
    path.mkdir(parents=True, exist_ok=True)
    for f in path.glob("*.db"):
        f.unlink()
    os.environ[MULTIPROC_ENV] = str(path)
    return path
