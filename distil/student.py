"""The ``student`` step: train the student on the labelled files first and the silver labels last
(a labelled headline keeps its own labels), then record the distillation in its manifest and card."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from distil.plan import STUDENT_CONFIG, DistilPlan, Say
from training.card import refresh_model_card
from training.data import subset, write_jsonl
from training.manifest import write_manifest


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
    manifest = write_manifest(Path(cfg.output or plan.output), manifest)  # a new fingerprint
    refresh_model_card(Path(cfg.output or plan.output))  # the card now names the teachers, silver
    return manifest
