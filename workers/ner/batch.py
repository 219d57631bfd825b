"""The ``ner`` queue: tag batches of headlines with a trained compact model.

The same producer, result store and exactly-once accounting as annotation, so the compact
model can take the LLM's place on the full stream and scale across hosts. A worker process
loads each model directory once and keeps it.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

from celery.utils.log import get_task_logger

from common.run import Run
from common.settings import get_settings
from common.store import result_key
from workers.batch_task import Fence

log = get_task_logger(__name__)



@lru_cache(maxsize=2)
def tagger_for(model_dir: str):
    """``model_dir`` as the client sent it: relative to the shared home or ``@data/`` (see
    ``common.paths.to_shared``), or absolute."""
    from common.paths import from_shared
    from training.inference import load_tagger

    return load_tagger(from_shared(model_dir), get_settings().ner_threads)


def tag_batch(run_id: str, bid: str, headlines: list[dict], model_dir: str,
              threshold: float | None = None, fence: Fence | None = None
              ) -> dict[str, Any]:
    """Tag one batch and record it once (a redelivered batch is skipped; ``fence`` as in
    ``workers.annotate.batch.run_batch``). Recorded through ``Run.record_batch`` like every
    batch queue, so a success also drops a dead letter an earlier attempt left."""
    s = get_settings()
    run = Run(run_id, s)
    if run.finished(bid):
        return {"batch_id": bid, "skipped": "already finished"}
    tagger = tagger_for(model_dir)
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
        rows.append({"key": result_key(h["id"], model, "ner"), **h, "entities": ents,
                     **({"tickers": tickers} if tickers is not None else {}),
                     "model": model, "valid": True, "tagged_at": time.time()})
    counts = {"headlines_done": len(rows), "with_companies": sum(1 for r in rows if r["entities"]),
              "spans": sum(len(r["entities"]) for r in rows), "llm_seconds": round(secs, 3)}
    if not run.record_batch(bid, rows, counts, lease=getattr(fence, "lease", None)):
        return {"batch_id": bid, "skipped": "recorded by another copy"}
    return {"batch_id": bid, **counts}
