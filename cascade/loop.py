"""``tickertag cascade``: one round (or several) of the label cascade.

A round, each step resumable on its own (``steps``), each leaving its files in
``WORK/round-R/``:

1. ``tag``: the round's teachers tag the pool through the ``ner`` queue (``distil``'s silver
   step: ``teacher-K.jsonl``, ``silver.jsonl``, ``disagreements.jsonl``).
2. ``llm``: the contested headlines, most uncertain first, at most the round's budget, become
   an annotation run on the ``annotate`` queue (``escalate.jsonl`` -> ``llm.jsonl``).
3. ``people``: the headlines where the LLM agrees with no teacher go to Argilla
   (``review/people.jsonl``); submitted answers are pulled (``reviewed/people.jsonl``).
4. ``student``: the round's labels (people > LLM > the teachers' vote, ``labels.jsonl``) train
   the student with the agreement filter, selected on valid only (``student/``).
5. ``teachers``: each teacher is trained again from its own recipe plus every escalated label
   so far; they are the next round's teachers (``round-R+1/teachers.json``).

``report.json`` in each round holds its figures: contested, LLM calls and $ against labelling
the whole pool, headlines sent to people and answered, where each label came from, the student.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cascade.contested import Band, Contested, rank_contested, within_budget
from cascade.escalate import ask_llm, llm_answers, write_escalated
from cascade.labels import resolve_labels
from cascade.retrain import step_teachers
from common.jsonl import read_jsonl, write_jsonl
from common.paths import home
from common.progress import Tick
from common.settings import Settings
from distil.plan import LABELLED_TRAIN, LABELLED_VALID, DistilPlan

STEPS = ("tag", "llm", "people", "student", "teachers")
DEFAULT_STEPS = ("tag", "llm", "people", "student")  # retraining teachers is asked for
Say = Callable[[str], None]


@dataclass
class CascadePlan:
    teachers: list[str] = field(default_factory=list)  # round 1's (later: the retrained ones)
    pool: str | None = None  # default: the bundled pool (distil's)
    output: str = field(default_factory=lambda: str(home() / "models" / "cascade-student"))
    work: str | None = None  # default: var/cascade/<output's name>
    first_round: int = 1
    rounds: int = 1
    # LLM budget per round: at most ``budget`` calls and at most ``max_share`` of the pool
    budget: int | None = None
    max_share: float = 0.10
    band: Band | None = None  # also escalate agreed spans scored inside this band
    replay: str | None = None  # serve this recording as the LLM (cascade.replay)
    people: bool = True  # escalate LLM-vs-teachers disagreements to Argilla
    review_from: str | None = None  # measurement only: a scripted reviewer answers from this
    workers: int = 2  # local ner / annotate worker processes (0: use running workers)
    student: str = "spacy"
    student_config: str | None = None
    student_epochs: int | None = None
    teacher_epochs: int | None = None  # override when teachers are retrained (tests)
    # Teachers retrained at once, each in its own process: on a CPU box two one-thread trainings
    # side by side finish in about half the time of one after the other (torch's threads on a
    # shared core wait for each other); on one GPU, 1.
    teacher_jobs: int = 1
    labelled: list[str] = field(default_factory=lambda: list(LABELLED_TRAIN))
    valid: list[str] = field(default_factory=lambda: list(LABELLED_VALID))
    pool_limit: int | None = None
    seed: int = 42

    @property
    def work_dir(self) -> Path:
        return Path(self.work or home() / "var" / "cascade" / Path(self.output).name)

    def round_dir(self, r: int) -> Path:
        return self.work_dir / f"round-{r}"

    def distil_plan(self, r: int, teachers: list[str], output: str | None = None) -> DistilPlan:
        from common.paths import POOL_CSV

        return DistilPlan(teachers=teachers, pool=self.pool or str(POOL_CSV),
                          output=output or str(self.round_dir(r) / "student"),
                          work=str(self.round_dir(r)), student=self.student,
                          student_config=self.student_config, epochs=self.student_epochs,
                          pool_limit=self.pool_limit, workers=self.workers,
                          drop_contested=True, labelled=list(self.labelled),
                          valid=list(self.valid), seed=self.seed)


def round_teachers(plan: CascadePlan, r: int) -> list[str]:
    """Round 1 uses the plan's teachers; a later round those the previous round retrained
    (``teachers.json``), unless the plan names teachers and starts there."""
    recorded = plan.round_dir(r) / "teachers.json"
    if r > plan.first_round or (not plan.teachers and recorded.exists()):
        if not recorded.exists():
            raise FileNotFoundError(f"{recorded}: round {r} has no teachers; run round {r - 1}'s "
                                    "`teachers` step first")
        return json.loads(recorded.read_text())["teachers"]
    if not plan.teachers:
        raise ValueError("the cascade needs at least one --teacher model directory")
    return list(plan.teachers)


def _teacher_rows(rdir: Path, n: int) -> list[list[dict[str, Any]]]:
    paths = [rdir / f"teacher-{k}.jsonl" for k in range(n)]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise FileNotFoundError(f"{', '.join(missing)}: run the round's `tag` step first")
    return [read_jsonl(p) for p in paths]


def _report(rdir: Path) -> dict[str, Any]:
    p = rdir / "report.json"
    return json.loads(p.read_text()) if p.exists() else {}


def _save_report(rdir: Path, rep: dict[str, Any]) -> None:
    (rdir / "report.json").write_text(json.dumps(rep, indent=2, default=str))


def step_llm(plan: CascadePlan, r: int, teachers: list[str], settings: Settings, say: Say,
             tick: Tick | None) -> dict[str, Any]:
    rdir = plan.round_dir(r)
    pool_n = sum(1 for _ in open(plan.work_dir / "pool.jsonl", encoding="utf-8"))
    ranked = rank_contested(_teacher_rows(rdir, len(teachers)), plan.band)
    cap = int(plan.max_share * pool_n)
    budget = cap if plan.budget is None else min(plan.budget, cap)
    chosen = within_budget(ranked, budget)
    rows = write_escalated(chosen, rdir / "escalate.jsonl")
    say(f"round {r}: {len(ranked)} of {pool_n} pool headlines contested; asking the LLM about "
        f"{len(chosen)} (budget {budget} calls: {plan.max_share:.0%} of the pool"
        + (f", at most {plan.budget}" if plan.budget is not None else "") + ")")
    res = ask_llm(rows, rdir / "llm.jsonl", settings, pool_n, plan.workers, plan.replay, tick)
    res.update({"contested": len(ranked), "budget": budget,
                "by_reason": {k: sum(1 for c in chosen if c.reason == k)
                              for k in ("disagree", "band")}})
    say(f"round {r}: LLM ({res['llm']}) answered {res['answered']} of {len(chosen)}, "
        f"{res['dead']} dead-lettered {res['dead_by_kind'] or ''}; {res['llm_calls']} calls = "
        f"{res['calls_share_of_pool'] or 0:.1%} of the pool, ${res['llm_cost_usd']:.4f} against "
        f"${res['whole_pool_cost_usd']:.4f} for the whole pool (run {res['run']})")
    if res["dead"]:
        say(f"round {r}: {res['dead']} escalated headlines have no LLM answer (dead letters of "
            f"run {res['run']}; `tickertag requeue --run {res['run']}` asks again); they stay "
            "contested and out of the student's training set")
    return res


def _contested(plan: CascadePlan, r: int, n_teachers: int) -> list[Contested]:
    rdir = plan.round_dir(r)
    asked = {row["id"] for row in read_jsonl(rdir / "escalate.jsonl")}
    return [c for c in rank_contested(_teacher_rows(rdir, n_teachers), plan.band)
            if c.row["id"] in asked]


def step_people(plan: CascadePlan, r: int, teachers: list[str], llm_run: str, say: Say,
                tick: Tick | None) -> dict[str, Any]:
    from cascade.people import for_people, pull_reviews, push_for_review

    rdir = plan.round_dir(r)
    rows = for_people(_contested(plan, r, len(teachers)), llm_answers(rdir / "llm.jsonl"))
    write_jsonl(rdir / "people.jsonl", rows)
    out: dict[str, Any] = {"sent": len(rows), "list": str(rdir / "people.jsonl")}
    if not rows:
        say(f"round {r}: the LLM agrees with a teacher on every escalated headline; none for people")
        return out
    pushed = push_for_review(rows, llm_run, rdir, tick)
    out["dataset"] = pushed.get("dataset")
    say(f"round {r}: {len(rows)} headlines where the LLM agrees with no teacher sent to Argilla "
        f"({out['dataset']}, most contested first)")
    if plan.review_from:
        from cascade.scripted_review import answer_from_recording

        out["scripted"] = answer_from_recording(out["dataset"], plan.review_from)
        say(f"round {r}: scripted reviewer answered {out['scripted']['answered']} records from "
            f"{plan.review_from}")
    pulled = pull_reviews(llm_run, rdir, tick)
    out.update({"answered": pulled.get("submitted", 0), "pending": pulled.get("pending", 0),
                "llm_vs_reviewed": pulled.get("llm_vs_reviewed")})
    say(f"round {r}: {out['answered']} answered by people, {out['pending']} pending (rerun "
        "`--step people` to pull later answers; they override the LLM)")
    return out


def step_student(plan: CascadePlan, r: int, teachers: list[str], say: Say,
                 on_progress: Callable[[dict], None] | None) -> dict[str, Any]:
    from cascade.people import reviewed_answers
    from distil.student import train_student

    rdir = plan.round_dir(r)
    silver = read_jsonl(rdir / "silver.jsonl")
    labels, sources = resolve_labels(silver, llm_answers(rdir / "llm.jsonl"),
                                     reviewed_answers(rdir))
    write_jsonl(rdir / "labels.jsonl", labels)
    say(f"round {r}: labels from the teachers {sources['teachers']}, the LLM {sources['llm']}, "
        f"people {sources['people']}; {sources['contested']} still contested (left out)")
    dplan = plan.distil_plan(r, teachers)
    m = train_student(dplan, rdir / "labels.jsonl", say, on_progress)
    return {"dir": dplan.output, "valid_f1": m.get("valid_f1"), "best_epoch": m.get("best_epoch"),
            "train_headlines": m.get("train_headlines"), "train_seconds": m.get("train_seconds"),
            "labels": dict(sources)}


def run_round(plan: CascadePlan, r: int, settings: Settings, steps: Sequence[str], say: Say,
              tick: Tick | None, on_progress: Callable[[dict], None] | None) -> dict[str, Any]:
    from distil.teachers import make_silver

    rdir = plan.round_dir(r)
    rdir.mkdir(parents=True, exist_ok=True)
    teachers = round_teachers(plan, r)
    rep = {**_report(rdir), "round": r, "teachers": teachers}
    pool = plan.work_dir / "pool.jsonl"
    if "tag" in steps:
        make_silver(plan.distil_plan(r, teachers), pool, settings, say, tick)
        meta = json.loads((rdir / "silver.json").read_text())
        rep["silver"] = {k: meta[k] for k in ("headlines", "spans", "disagreements")}
    if "llm" in steps:
        rep["llm"] = step_llm(plan, r, teachers, settings, say, tick)
    if "people" in steps and plan.people:
        if "llm" not in rep:
            raise FileNotFoundError(f"{rdir}/report.json: run the round's `llm` step first")
        rep["people"] = step_people(plan, r, teachers, rep["llm"]["run"], say, tick)
    if "student" in steps:
        rep["student"] = step_student(plan, r, teachers, say, on_progress)
    if "teachers" in steps:
        rep["teachers_next"] = step_teachers(plan, r, teachers, say, on_progress)
    _save_report(rdir, rep)
    return rep


def run_cascade(plan: CascadePlan, settings: Settings, steps: Sequence[str] = DEFAULT_STEPS,
                say: Say = print, tick: Tick | None = None,
                on_progress: Callable[[dict], None] | None = None) -> dict[str, Any]:
    """Build the pool (once), then run ``plan.rounds`` rounds from ``plan.first_round``.

    With more than one round, every round but the last also retrains its teachers (the next
    round needs them). The last round's student is copied to ``plan.output``.
    """
    from distil.pool import make_pool

    unknown = set(steps) - set(STEPS)
    if unknown:
        raise ValueError(f"unknown cascade step(s) {sorted(unknown)}; choose from {STEPS}")
    if plan.rounds < 1:
        raise ValueError(f"--rounds must be >= 1, got {plan.rounds}")
    if not 0.0 < plan.max_share <= 1.0:
        raise ValueError(f"the budget share must be in (0, 1], got {plan.max_share}")
    plan.work_dir.mkdir(parents=True, exist_ok=True)
    pool_plan = plan.distil_plan(plan.first_round, [])
    pool_plan.work = str(plan.work_dir)  # one pool, shared by every round
    make_pool(pool_plan, say)
    reports = []
    last = plan.first_round + plan.rounds - 1
    for r in range(plan.first_round, last + 1):
        rs = list(steps) + (["teachers"] if r < last and "teachers" not in steps else [])
        reports.append(run_round(plan, r, settings, rs, say, tick, on_progress))
    final = reports[-1].get("student")
    if final and Path(final["dir"]).resolve() != Path(plan.output).resolve():
        shutil.rmtree(plan.output, ignore_errors=True)
        shutil.copytree(final["dir"], plan.output)
        say(f"round {last}'s student copied to {plan.output}")
    return {"work": str(plan.work_dir), "output": plan.output, "rounds": reports}
