"""The ``silver`` step: each teacher tags the pool through the ``ner`` queue (the product's bulk
path), and the teachers' answers are combined into silver labels."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from common.paths import home, to_shared
from common.progress import Tick
from common.settings import Settings
from distil.plan import DistilPlan, Say
from training.manifest import file_digest, model_fingerprint
from training.silver import combine_silver, protected_texts, read_tagged, silver_quality, write_silver


def teacher_run_id(fingerprint: str, pool: Path) -> str:
    """The run of one teacher over one pool, named by the teacher's fingerprint and the pool's
    bytes: a rerun resumes it (the producer skips headlines already in the store), and a teacher
    retrained into the same directory starts a run of its own instead of getting the old model's
    answers back as "already done"."""
    key = f"{fingerprint}\0{file_digest(pool)}"
    return f"distil-{hashlib.sha1(key.encode()).hexdigest()[:10]}"


def tag_with_teacher(teacher: str, pool: Path, out: Path, settings: Settings, workers: int,
                     tick: Tick | None = None) -> dict[str, Any]:
    """Tag ``pool`` with ``teacher`` through the ``ner`` queue and export the run to ``out``.

    Starts ``workers`` local ner worker processes (1 thread each) unless 0; workers already
    consuming the queue on other hosts take batches too."""
    from common.celery_app import app
    from common.services import ensure_redis, start_worker, worker_env
    from common.task_names import NER_TASK
    from producer.follow import produce_and_follow, step_tick
    from producer.produce import Producer
    from producer.requeue import requeue_dead
    from producer.sources import iter_source
    from training.inference import servable_manifest

    servable_manifest(teacher)  # a refused teacher fails here, not as a pool of dead letters
    teacher_dir = str(Path(teacher).resolve())
    fingerprint = model_fingerprint(teacher_dir)
    run_id = teacher_run_id(fingerprint, pool)
    logs = home() / "var" / "logs"
    started = []
    try:
        r = ensure_redis(settings.redis_dsn(), logs)
        if r:
            started.append(r)
        for _ in range(workers):
            # one single-threaded process per core; they write where this process reads
            started.append(start_worker("ner", logs, concurrency=1, pool="prefork",
                                        env=worker_env(settings, TICKERTAG_NER_THREADS="1")))
        producer = Producer(app, settings, run_id, task=NER_TASK,
                            task_kwargs={"model_dir": to_shared(teacher_dir), "threshold": None,
                                         "fingerprint": fingerprint})
        # resuming the step retries what failed last time (a teacher fixed since, a worker
        # that died): its dead letters go back on the queue before the follow below
        _, requeued = requeue_dead(app, settings, run_id)
        rep = produce_and_follow(producer, iter_source(str(pool)), pool.name, started,
                                 step_tick(tick, f"tag {Path(teacher).name}"))
        st = producer.ledger.stats()
    finally:
        for p in reversed(started):
            p.stop()
    n = producer.store.export(str(out))
    # relative to the home (or @data/): silver.json stays true when var/ and models/ move
    return {"teacher": to_shared(teacher_dir), "fingerprint": fingerprint, "run": run_id,
            "tagged": n, "enqueued": rep.enqueued, "already_done": rep.already_done,
            "requeued": requeued, "dead": int(st["headlines_dead"])}


def make_silver(plan: DistilPlan, pool: Path, settings: Settings, say: Say,
                tick: Tick | None = None) -> Path:
    runs = []
    for k, teacher in enumerate(plan.teachers):
        out = plan.work_dir / f"teacher-{k}.jsonl"
        runs.append(tag_with_teacher(teacher, pool, out, settings, plan.workers, tick))
        run = runs[-1]
        say(f"silver: teacher {teacher}: {run['tagged']} headlines tagged in run {run['run']} "
            f"({run['already_done']} were already done, {run['requeued']} dead letters "
            f"requeued, {run['dead']} dead-lettered)")
        if run["tagged"] == 0 and run["dead"]:
            raise RuntimeError(f"teacher {teacher} tagged none of the pool ({run['dead']} "
                               f"headlines dead-lettered in run {run['run']}: each dead letter in "
                               f"{settings.results_dir}/{run['run']}/dead says why; rerun this "
                               "step to retry them)")
    tagged = [read_tagged(plan.work_dir / f"teacher-{k}.jsonl") for k in range(len(plan.teachers))]
    silver, disagree = combine_silver(tagged, protected_texts(), plan.min_votes)
    quality = silver_quality(silver, plan.labelled)
    meta = {"teachers": runs, "headlines": len(silver), "disagreements": len(disagree),
            "spans": sum(len(r["entities"]) for r in silver),
            "with_company": sum(1 for r in silver if r["entities"]),
            "min_votes": plan.min_votes, "quality_vs_labels": quality}
    write_silver(plan.work_dir, silver, disagree, meta)
    say(f"silver: {len(silver)} headlines, {meta['spans']} spans, {len(disagree)} where the "
        f"teachers disagree -> {plan.work_dir / 'silver.jsonl'}")
    for name, q in quality.items():
        say(f"silver vs {name} on {q['headlines']} shared headlines: F1 {q['f1']:.4f} "
            f"(P {q['precision']:.4f}, R {q['recall']:.4f})")
    return plan.work_dir / "silver.jsonl"
