"""``tickertag distil``: teachers tag the headline pool through the ``ner`` queue, their answers
are combined into silver labels, and a fast student is trained on silver + the labelled files.

Why through the queue: the silver pass is the product's own bulk path (producer, store,
exactly-once ledger, dead letters, workers on any host), so distilling 28k or 900k headlines is
the same job, just with more ``tickertag worker ner`` processes.

Steps (each runnable alone with ``steps``; each skips work already done, so a rerun resumes):
1. ``pool``: the source's distinct titles minus every held-out title -> ``WORK/pool.jsonl``.
2. ``silver``: one ``ner`` run per teacher (run id derived from teacher and pool, so a rerun
   resumes it: the producer skips headlines already in the store), exported to
   ``WORK/teacher-K.jsonl``; combined into ``WORK/silver.jsonl`` + ``disagreements.jsonl``.
3. ``student``: ``training.runner.run_training`` on the labelled files (first) + silver.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.paths import CONFIGS_DIR, LABELED_DIR, POOL_CSV, home, to_shared
from common.progress import Tick
from common.settings import Settings
from training.card import refresh_model_card
from training.data import subset, write_jsonl
from training.silver import (
    combine_silver,
    protected_texts,
    read_tagged,
    silver_quality,
    write_silver,
)

STEPS = ("pool", "silver", "student")
STUDENT_CONFIG = str(CONFIGS_DIR / "student.toml")
LABELLED_TRAIN = [str(LABELED_DIR / f) for f in (
    "benzinga_gold_train.jsonl", "benzinga_llm_train.jsonl", "benzinga_llm_extra_train.jsonl")]
LABELLED_VALID = [str(LABELED_DIR / f) for f in (
    "benzinga_gold_valid.jsonl", "benzinga_llm_extra_valid.jsonl")]

Say = Callable[[str], None]


@dataclass
class DistilPlan:
    teachers: list[str]
    pool: str = str(POOL_CSV)
    output: str = field(default_factory=lambda: str(home() / "models" / "student"))
    work: str | None = None  # default: var/distil/<output's name>
    student: str = "spacy"
    # a TrainConfig file (default for spaCy: training/configs/student.toml); the plan's fields
    # below override it
    student_config: str | None = None
    epochs: int | None = None
    max_silver: int | None = None  # a seeded subset of the silver set (the silver-size curve)
    pool_limit: int | None = None  # read at most this many distinct pool headlines
    workers: int = 2  # local ner worker processes to start (0: use workers already running)
    min_votes: int | None = None
    # Agreement filter: leave the headlines where the teachers disagree out of the student's
    # training set instead of teaching it the vote's half-guess (those are review material).
    # On by default: valid chose it (0.942 vs 0.937, training/RESULTS.md, 2026-12-04, 98b2cd5).
    drop_contested: bool = True
    labelled: list[str] = field(default_factory=lambda: list(LABELLED_TRAIN))
    valid: list[str] = field(default_factory=lambda: list(LABELLED_VALID))
    seed: int = 42

    @property
    def work_dir(self) -> Path:
        return Path(self.work or home() / "var" / "distil" / Path(self.output).name)


def _digest(*parts: str) -> str:
    return hashlib.sha1("\0".join(parts).encode()).hexdigest()[:10]


def _file_digest(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:10]


def make_pool(plan: DistilPlan, say: Say) -> Path:
    from producer.sources import iter_source
    from training.silver import build_pool

    out = plan.work_dir / "pool.jsonl"
    meta_path = plan.work_dir / "pool.json"
    key = {"source": str(plan.pool), "limit": plan.pool_limit}
    if out.exists() and meta_path.exists() and json.loads(meta_path.read_text()).get("key") == key:
        say(f"pool: {out} already built")
        return out
    rep = build_pool(iter_source(plan.pool), out, protected_texts(), plan.pool_limit)
    meta_path.write_text(json.dumps({"key": key, **rep.__dict__}, indent=2))
    say(f"pool: {rep.kept} distinct headlines from {rep.rows} rows of {plan.pool} -> {out} "
        f"({rep.protected} held-out test/valid titles excluded, {rep.duplicates} duplicates, "
        f"{rep.rejected} invalid)")
    return out


def tag_with_teacher(teacher: str, pool: Path, out: Path, settings: Settings, workers: int,
                     tick: Tick | None = None) -> dict[str, Any]:
    """Tag ``pool`` with ``teacher`` through the ``ner`` queue and export the run to ``out``.

    Starts ``workers`` local ner worker processes (1 thread each) unless 0; workers already
    consuming the queue on other hosts take batches too."""
    from common.celery_app import app
    from common.services import ensure_redis, start_worker, worker_env
    from common.store import ResultStore
    from common.task_names import NER_TASK
    from producer.follow import produce_and_follow, step_tick
    from producer.produce import Producer
    from producer.requeue import requeue_dead
    from producer.sources import iter_source
    from training.inference import servable_manifest

    servable_manifest(teacher)  # a refused teacher fails here, not as a pool of dead letters
    teacher_dir = str(Path(teacher).resolve())
    run_id = f"distil-{_digest(teacher_dir, _file_digest(pool))}"
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
                            task_kwargs={"model_dir": to_shared(teacher_dir), "threshold": None})
        # resuming the step retries what failed last time (a teacher fixed since, a worker
        # that died): its dead letters go back on the queue before the follow below
        _, requeued = requeue_dead(app, settings, run_id)
        rep = produce_and_follow(producer, iter_source(str(pool)), pool.name, started,
                                 step_tick(tick, f"tag {Path(teacher).name}"))
        st = producer.ledger.stats()
    finally:
        for p in reversed(started):
            p.stop()
    n = ResultStore(settings.results_dir, run_id).export(str(out))
    # relative to the home (or @data/): silver.json stays true when var/ and models/ move
    return {"teacher": to_shared(teacher_dir), "run": run_id, "tagged": n, "enqueued": rep.enqueued,
            "already_done": rep.already_done, "requeued": requeued,
            "dead": int(st["headlines_dead"])}


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


def train_student(plan: DistilPlan, silver: Path | None, say: Say,
                  on_progress: Callable[[dict], None] | None = None) -> dict[str, Any]:
    from training.config import TrainConfig
    from training.data import read_jsonl
    from training.runner import run_training

    train = list(plan.labelled)
    silver_n = 0
    if silver is not None:
        rows = read_jsonl(silver)
        if plan.drop_contested:
            kept = [r for r in rows if r.get("agreement", 1.0) >= 1.0]
            contested, rows = len(rows) - len(kept), kept
            if contested:  # one teacher never disagrees with itself: train on the file as is
                silver = plan.work_dir / "silver-agreed.jsonl"
                write_jsonl(silver, rows)
            say(f"student: {contested} silver headlines where the teachers disagree left out")
        if plan.max_silver is not None and plan.max_silver < len(rows):
            rows = subset(rows, plan.max_silver, plan.seed)
            silver = plan.work_dir / f"{silver.stem}-{plan.max_silver}.jsonl"
            write_jsonl(silver, rows)
        silver_n = len(rows)
        if silver_n:
            train.append(str(silver))  # last: a labelled headline keeps its own labels
    config = plan.student_config or (STUDENT_CONFIG if plan.student == "spacy" else None)
    cfg = TrainConfig.from_file(config, kind=plan.student, train=train,
                                valid=plan.valid, output=plan.output, epochs=plan.epochs,
                                seed=plan.seed)
    say(f"student: {cfg.kind} on {len(plan.labelled)} labelled files + {silver_n} silver "
        f"headlines -> {cfg.output}")
    manifest = run_training(cfg, on_progress)
    manifest["distil"] = {"silver_headlines": silver_n, "silver": str(silver) if silver else None,
                          "teachers": plan.teachers, "drop_contested": plan.drop_contested}
    from training.inference import MANIFEST

    (Path(cfg.output or plan.output) / MANIFEST).write_text(json.dumps(manifest, indent=2))
    refresh_model_card(Path(cfg.output or plan.output))  # the card now names the teachers, silver
    return manifest


def run_distil(plan: DistilPlan, settings: Settings, steps: Sequence[str] = STEPS,
               say: Say = print, tick: Tick | None = None,
               on_progress: Callable[[dict], None] | None = None) -> dict[str, Any]:
    """Run the chosen steps in order; a step that is not run uses what an earlier run left in
    the work directory."""
    unknown = set(steps) - set(STEPS)
    if unknown:
        raise ValueError(f"unknown distil step(s) {sorted(unknown)}; choose from {STEPS}")
    plan.work_dir.mkdir(parents=True, exist_ok=True)
    pool = plan.work_dir / "pool.jsonl"
    if "pool" in steps:
        pool = make_pool(plan, say)
    silver = plan.work_dir / "silver.jsonl"
    if "silver" in steps:
        if not plan.teachers:
            raise ValueError("the silver step needs at least one --teacher model directory")
        if not pool.exists():
            raise FileNotFoundError(f"{pool}: run the pool step first")
        silver = make_silver(plan, pool, settings, say, tick)
    out: dict[str, Any] = {"work": str(plan.work_dir), "silver": str(silver)}
    if "student" in steps:
        use = silver if (silver.exists() and plan.max_silver != 0) else None
        if use is None and plan.max_silver != 0:
            raise FileNotFoundError(f"{silver}: run the silver step first (or --max-silver 0 "
                                    "for a student on the labelled files only)")
        out["manifest"] = train_student(plan, use, say, on_progress)
    return out
