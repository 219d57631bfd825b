"""Escalation: the contested headlines become an annotation run on the real ``annotate`` queue.

Why the ordinary annotation path: escalated headlines get everything a headline of any run gets
(the producer's dedup and backpressure, the grammar, the response cache, the exactly-once
ledger, dead letters, ``tickertag status`` / ``requeue``), and the LLM is whatever the settings
name: a hosted endpoint, the local llama.cpp server, or ``cascade.replay`` serving a recording.

The run id is derived from the round's directory and the escalated set, so rerunning the step
resumes the same run: the producer skips what is already answered, and the response cache
answers a repeat without a call.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cascade.contested import Contested
from common.jsonl import read_jsonl, write_jsonl
from common.paths import home
from common.progress import Tick
from common.settings import Settings

Say = Callable[[str], None]


def escalation_run_id(round_dir: Path, rows_file: Path) -> str:
    h = hashlib.sha1(str(round_dir.resolve()).encode())
    h.update(rows_file.read_bytes())
    return f"cascade-{h.hexdigest()[:10]}"


def write_escalated(contested: list[Contested], path: Path) -> Path:
    """The headlines to ask the LLM about, in ranking order (the producer's batch order)."""
    write_jsonl(path, [{"id": c.row["id"], "text": c.row["text"], "date": c.row.get("date"),
                        "stock_symbol": c.row.get("stock_symbol"),
                        "uncertainty": round(c.uncertainty, 4), "reason": c.reason}
                       for c in contested])
    return path


def ask_llm(rows_file: Path, out: Path, settings: Settings, pool_headlines: int, workers: int,
            replay: str | None = None, tick: Tick | None = None) -> dict[str, Any]:
    """Annotate ``rows_file`` through the ``annotate`` queue; export the answers to ``out``.

    ``workers`` local annotate workers are started (0: rely on workers already consuming the
    queue, which must then point at the LLM themselves). ``replay``: a recording to serve with
    ``cascade.replay`` on a free local port, which this run's settings and workers then use.
    Returns the run's ledger figures with the LLM spend against the whole pool.
    """
    from common.celery_app import app
    from common.services import ensure_redis, free_port, start_worker, worker_env
    from common.summary import escalation_cost
    from producer.follow import produce_and_follow, step_tick
    from producer.produce import Producer
    from producer.sources import iter_source

    logs = home() / "var" / "logs"
    started = []
    run_id = escalation_run_id(out.parent, rows_file)
    try:
        r = ensure_redis(settings.redis_dsn(), logs)
        if r:
            started.append(r)
        if replay:
            from cascade.replay import REPLAY_MODEL, start_replay_server

            port = free_port()
            started.append(start_replay_server(replay, port, logs))
            settings = settings.model_copy(update={
                "llm_base_url": f"http://127.0.0.1:{port}", "llm_model": REPLAY_MODEL,
                "response_format": "llama.cpp"})
        settings = settings.model_copy(update={"auto_curate": False})
        for _ in range(workers):
            started.append(start_worker("annotate", logs, concurrency=2, env=worker_env(
                settings, TICKERTAG_AUTO_CURATE="false",
                TICKERTAG_RESPONSE_FORMAT=settings.response_format)))
        producer = Producer(app, settings, run_id)
        producer.ledger.set_meta(pool_headlines=pool_headlines, cascade_round=str(out.parent))
        rep = produce_and_follow(producer, iter_source(str(rows_file)), rows_file.name, started,
                                 step_tick(tick, "ask the LLM"))
        stats = producer.ledger.stats()
    finally:
        for p in reversed(started):
            p.stop()
    store = producer.store
    n = store.export(str(out))
    dead_reasons: dict[str, int] = {}
    for entry in store.iter_dead():
        kind = str(entry.get("error_type") or "?")
        dead_reasons[kind] = dead_reasons.get(kind, 0) + len(entry.get("headlines") or [])
    return {"run": run_id, "llm": settings.llm_model, "escalated": rep.enqueued + rep.already_done,
            "answered": n, "invalid": int(stats["invalid"]),
            "dead": int(stats["headlines_dead"]), "dead_by_kind": dead_reasons,
            "cache_hits": int(stats["cache_hits"]),
            "prompt_tokens": int(stats["prompt_tokens"]),
            "completion_tokens": int(stats["completion_tokens"]),
            **escalation_cost(stats, pool_headlines, settings)}


def llm_answers(path: Path) -> dict[str, dict[str, Any]]:
    """The valid answers of an exported escalation run, by headline id (an invalid answer is
    no label: that headline stays contested)."""
    if not path.exists():
        return {}
    return {r["id"]: r for r in read_jsonl(path) if r.get("valid", True)}
