"""The ``ner`` queue: tag batches of headlines with a trained compact model.

The same producer, result store and exactly-once accounting as annotation, so the compact
model can take the LLM's place on the full stream and scale across hosts. A worker process
keeps the models it loaded by their fingerprint (``training.manifest``), not their path: a
directory retrained or overwritten while the worker runs is loaded again at its next batch, and
each result names the fingerprint of the model that made it.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

from celery.utils.log import get_task_logger

from common.run import Run
from common.settings import get_settings
from common.store import result_key
from workers.batch_task import Fence

log = get_task_logger(__name__)

KEEP_MODELS = 2  # loaded models a worker keeps, the least recently used dropped first
_taggers: OrderedDict[str, Any] = OrderedDict()  # fingerprint -> loaded Tagger
_lock = threading.Lock()


class ModelChanged(RuntimeError):
    """The model directory no longer holds the model the run was started with."""


def tagger_for(model_dir: str, expected: str | None = None) -> tuple[Any, str]:
    """The loaded model in ``model_dir`` and its fingerprint, loaded once per fingerprint.

    ``model_dir`` as the client sent it: relative to the shared home or ``@data/`` (see
    ``common.paths.to_shared``), or absolute. The fingerprint is read from the manifest at every
    batch (a small file), so new weights in the same directory are served from the next batch
    on. ``expected``: the fingerprint the run was started with; a directory that now holds
    another model raises ``ModelChanged`` instead of mixing two models' answers in one run."""
    from common.paths import from_shared
    from training.inference import load_tagger
    from training.manifest import model_fingerprint

    path = from_shared(model_dir)
    fp = model_fingerprint(path)
    if expected and fp != expected:
        raise ModelChanged(f"{model_dir} now holds model {fp}, not {expected} that this run "
                           "was started with; start the run again to tag with the new model")
    with _lock:
        tagger = _taggers.pop(fp, None)
        if tagger is None:
            tagger = load_tagger(path, get_settings().ner_threads)
        _taggers[fp] = tagger
        while len(_taggers) > KEEP_MODELS:
            _taggers.popitem(last=False)
    return tagger, fp


def tag_batch(run_id: str, bid: str, headlines: list[dict], model_dir: str,
              threshold: float | None = None, fence: Fence | None = None,
              fingerprint: str | None = None) -> dict[str, Any]:
    """Tag one batch and record it once (a redelivered batch is skipped; ``fence`` as in
    ``workers.annotate.batch.run_batch``). Recorded through ``Run.record_batch`` like every
    batch queue, so a success also drops a dead letter an earlier attempt left.
    ``fingerprint``: the model the run is of (``tagger_for``'s ``expected``)."""
    s = get_settings()
    run = Run(run_id, s)
    if run.finished(bid):
        return {"batch_id": bid, "skipped": "already finished"}
    tagger, fp = tagger_for(model_dir, fingerprint)
    t0 = time.perf_counter()
    spans = tagger.predict([h["text"] for h in headlines], threshold)
    secs = time.perf_counter() - t0
    if fence is not None and not fence():
        return {"batch_id": bid, "skipped": "recorded by another copy"}
    model = f"{tagger.kind}:{model_dir}"
    from linking.linker import linked, load_cached

    table = load_cached(s.aliases) if s.aliases else None
    rows = []
    for h, sp in zip(headlines, spans, strict=True):
        ents, tickers = linked(sp, h["text"], table)
        rows.append({"key": result_key(h["id"], f"{model}@{fp}", "ner"), **h, "entities": ents,
                     **({"tickers": tickers} if tickers is not None else {}),
                     "model": model, "model_fingerprint": fp, "valid": True,
                     "tagged_at": time.time()})
    counts = {"headlines_done": len(rows), "with_companies": sum(1 for r in rows if r["entities"]),
              "spans": sum(len(r["entities"]) for r in rows), "llm_seconds": round(secs, 3)}
    if not run.record_batch(bid, rows, counts, lease=getattr(fence, "lease", None)):
        return {"batch_id": bid, "skipped": "recorded by another copy"}
    return {"batch_id": bid, **counts}
