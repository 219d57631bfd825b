"""The cascade's ``teachers`` step: every teacher trained again from its own recipe on its files
plus the labels escalated so far, one after the other or side by side in processes of their own
(``teacher_jobs``): on a CPU box two one-thread trainings side by side take about half the wall
time of one after the other."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from cascade.labels import escalated_labels
from common.jsonl import read_jsonl, write_jsonl

Say = Callable[[str], None]


class RoundPlan(Protocol):
    """What this step reads of ``cascade.loop.CascadePlan`` (named here, not imported: the
    loop imports this module)."""

    first_round: int
    teacher_epochs: int | None
    teacher_jobs: int

    def round_dir(self, r: int) -> Path: ...


def step_teachers(plan: RoundPlan, r: int, teachers: list[str], say: Say,
                  on_progress: Callable[[dict], None] | None) -> dict[str, Any]:
    """Retrain every teacher from its recipe (its manifest's config) on its own training files
    plus every round's escalated labels so far (labelled files first: they win a shared
    headline); the new teachers are recorded for round ``r + 1``."""
    from training.inference import read_manifest

    rows: dict[str, dict[str, Any]] = {}
    for k in range(plan.first_round, r + 1):
        labels = plan.round_dir(k) / "labels.jsonl"
        if not labels.exists():
            raise FileNotFoundError(f"{labels}: run round {k}'s `student` step first")
        rows.update({x["id"]: x for x in escalated_labels(read_jsonl(labels))})
    nxt = plan.round_dir(r + 1)
    escalated = nxt / "escalated-labels.jsonl"
    write_jsonl(escalated, list(rows.values()))
    cfgs = []
    for k, t in enumerate(teachers):
        cfg = dict(read_manifest(Path(t))["config"])
        cfg.update({"train": [*cfg["train"], str(escalated)], "output": str(nxt / f"teacher-{k}"),
                    "resume": False})
        if plan.teacher_epochs is not None:
            cfg["epochs"] = plan.teacher_epochs
        say(f"round {r}: retraining teacher {k + 1} ({cfg['kind']}, seed {cfg.get('seed')}) on "
            f"its files + {len(rows)} escalated labels -> {cfg['output']}")
        cfgs.append(cfg)
    jobs = max(1, min(plan.teacher_jobs, len(cfgs)))
    if jobs == 1:
        out = [_retrain(cfg, on_progress) for cfg in cfgs]
    else:
        out = _retrain_side_by_side(cfgs, jobs, say)
    (nxt / "teachers.json").write_text(json.dumps(
        {"teachers": [o["dir"] for o in out], "from_round": r, "escalated_labels": len(rows)},
        indent=2))
    return {"next": out, "escalated_labels": len(rows)}


def _retrain(cfg: dict[str, Any], on_progress: Callable[[dict], None] | None = None
             ) -> dict[str, Any]:
    """Train one teacher from its recipe (a process of its own calls this too)."""
    from training.config import TrainConfig
    from training.runner import run_training

    m = run_training(TrainConfig(**cfg), on_progress)
    return {"dir": cfg["output"], "valid_f1": m.get("valid_f1")}


def _retrain_side_by_side(cfgs: list[dict[str, Any]], jobs: int, say: Say
                          ) -> list[dict[str, Any]]:
    """Each teacher in a spawned process, ``jobs`` at once, that ends with the cascade; a
    teacher without a thread count gets its share of the cores, so the trainings do not fight
    over them."""
    import os

    from common.pool import parent_bound_pool

    share = max(1, (os.cpu_count() or 1) // jobs)
    cfgs = [{**c, "torch_threads": c.get("torch_threads") or share} for c in cfgs]
    with parent_bound_pool(jobs) as pool:  # a killed cascade leaves no teacher training
        futures = [pool.submit(_retrain, c) for c in cfgs]
        out = []
        for k, f in enumerate(futures):
            out.append(f.result())
            say(f"teacher {k + 1} retrained: valid F1 {out[-1]['valid_f1']}")
    return out
