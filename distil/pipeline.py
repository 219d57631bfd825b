"""``run_distil``: the steps of a distillation run in order, each resuming from what an earlier
run left in the work directory."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from common.progress import Tick
from common.settings import Settings
from distil.plan import STEPS, DistilPlan, Say
from distil.pool import make_pool
from distil.student import train_student
from distil.teachers import make_silver


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
