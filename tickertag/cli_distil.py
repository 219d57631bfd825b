"""CLI for distillation: ``tickertag distil`` (teachers -> silver labels -> fast student).
A thin shell: the work is in ``distil/`` and ``training/silver.py``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console()


def distil(
    teacher: Annotated[list[str] | None, typer.Option(
        help="Teacher model directory (repeatable: several teachers vote).")] = None,
    pool: Annotated[str | None, typer.Option(
        help="Unlabelled headlines (CSV/JSONL/Parquet or hub:<id>; default: the bundled "
             "28k-row Benzinga pool). Test and valid titles are always excluded.")] = None,
    student: Annotated[str, typer.Option(help="Student model family (spacy, gliner, ...).")
                       ] = "spacy",
    output: Annotated[str, typer.Option(help="Student model directory.")] = "models/student",
    work: Annotated[str | None, typer.Option(help="Pool, teacher runs and silver files "
                                             "(default var/distil/<output name>).")] = None,
    config: Annotated[str | None, typer.Option(help="The student's TrainConfig file (TOML/YAML/"
                                               "JSON); options given here override it.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Student epochs.")] = None,
    max_silver: Annotated[int | None, typer.Option(
        help="Train on a seeded subset of N silver headlines (0: labelled files only).")] = None,
    pool_limit: Annotated[int | None, typer.Option(help="Use at most N pool headlines.")] = None,
    workers: Annotated[int, typer.Option(help="Local ner worker processes to start for the "
                                         "silver pass (0: rely on running workers).")] = 2,
    min_votes: Annotated[int | None, typer.Option(help="Teachers that must agree on a span "
                                                  "(default: a majority).")] = None,
    drop_contested: Annotated[bool, typer.Option(
        "--drop-contested/--keep-contested",
        help="Leave the silver headlines where the teachers disagree out of the student's "
             "training set (an agreement filter; the default, chosen on valid), or keep them "
             "with the vote's labels.")] = True,
    step: Annotated[list[str] | None, typer.Option(
        help="Run only these steps (pool, silver, student; repeatable). Each resumes.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Distil teachers into a fast student.

    Tag the pool through the ner queue, combine the
    teachers' answers into silver labels, train the student on labelled + silver headlines."""
    from common.paths import POOL_CSV
    from common.settings import get_settings
    from distil.pipeline import run_distil
    from distil.plan import STEPS, DistilPlan
    from tickertag.progress import run_steps

    plan = DistilPlan(teachers=teacher or [], pool=pool or str(POOL_CSV), output=output,
                      work=work, student=student, student_config=config, epochs=epochs,
                      max_silver=max_silver, pool_limit=pool_limit, workers=workers,
                      min_votes=min_votes, drop_contested=drop_contested)
    res = run_steps(console, as_json, "distil", lambda say, tick: run_distil(
        plan, get_settings(), step or STEPS, say=say, tick=tick))
    if as_json:
        print(json.dumps(res, default=str))
        return
    m = res.get("manifest")
    if m:
        console.print(f"student saved to {Path(output)}: best epoch {m.get('best_epoch')}, "
                      f"valid F1 {m.get('valid_f1')} ({m['train_seconds']} s); evaluate with "
                      f"`tickertag predict --model {output} ...`")


def register(app: typer.Typer) -> None:
    app.command()(distil)
