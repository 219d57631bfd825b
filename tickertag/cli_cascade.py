"""CLI for the label cascade: ``tickertag cascade`` (a round: teachers tag the pool, the LLM is
asked where they disagree, people where the LLM disagrees with every teacher, a student is
trained) and ``tickertag llm replay`` (an OpenAI-compatible server answering from a recording).
A thin shell: the work is in ``cascade/``."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

console = Console()


def _band(value: str | None):
    from cascade.contested import Band

    if not value:
        return None
    try:
        low, high = (float(x) for x in value.split(","))
        return Band(low, high)
    except ValueError as e:
        raise typer.BadParameter(f"--band {value!r}: expected LOW,HIGH in [0, 1] ({e})") from e


def cascade(
    teacher: Annotated[list[str] | None, typer.Option(
        help="Teacher model directory for the first round (repeatable: two or more disagree "
             "usefully). Later rounds use the teachers the round before retrained.")] = None,
    pool: Annotated[str | None, typer.Option(
        help="Unlabelled headlines (default: the bundled 28k-row Benzinga pool; test and valid "
             "titles are always excluded).")] = None,
    output: Annotated[str, typer.Option(help="Where the last round's student goes.")
                      ] = "models/cascade-student",
    work: Annotated[str | None, typer.Option(
        help="Pool and round directories (default var/cascade/<output name>).")] = None,
    rounds: Annotated[int, typer.Option(help="Rounds to run; every round but the last also "
                                        "retrains its teachers for the next.")] = 1,
    first_round: Annotated[int, typer.Option("--round", help="The round to start at.")] = 1,
    budget: Annotated[int | None, typer.Option(
        envvar="TICKERTAG_CASCADE_BUDGET",
        help="At most this many LLM calls per round (most uncertain headlines first).")] = None,
    max_share: Annotated[float, typer.Option(
        envvar="TICKERTAG_CASCADE_MAX_SHARE",
        help="At most this share of the pool goes to the LLM per round.")] = 0.10,
    band: Annotated[str | None, typer.Option(
        help="Also escalate spans every teacher predicted with a score inside LOW,HIGH "
             "(e.g. 0.4,0.6).")] = None,
    replay: Annotated[str | None, typer.Option(
        help="Serve this recording of LLM answers as the LLM (cascade.replay) instead of "
             "TICKERTAG_LLM_BASE_URL; headlines it lacks end as dead letters.")] = None,
    people: Annotated[bool, typer.Option(
        "--people/--no-people",
        help="Send the headlines where the LLM agrees with no teacher to Argilla "
             "(TICKERTAG_ARGILLA_URL) and use submitted answers.")] = True,
    review_from: Annotated[str | None, typer.Option(
        help="Measurement only: a scripted reviewer answers the Argilla records from this "
             "recording.")] = None,
    student: Annotated[str, typer.Option(help="Student model family.")] = "spacy",
    config: Annotated[str | None, typer.Option(help="The student's TrainConfig file.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Student epochs.")] = None,
    teacher_epochs: Annotated[int | None, typer.Option(
        help="Epochs for retrained teachers (default: each teacher's own recipe).")] = None,
    teacher_jobs: Annotated[int, typer.Option(
        help="Teachers retrained at once, each in its own process (2 on a 2-core CPU box: "
             "about half the time of one after the other).")] = 1,
    pool_limit: Annotated[int | None, typer.Option(help="Use at most N pool headlines.")] = None,
    workers: Annotated[int, typer.Option(help="Local ner/annotate worker processes to start "
                                         "(0: rely on running workers).")] = 2,
    step: Annotated[list[str] | None, typer.Option(
        help="Run only these steps of each round (tag, llm, people, student, teachers; "
             "repeatable). Each resumes.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Run cascade rounds: teachers, then the LLM, then people.

    The LLM labels only the pool headlines the teachers disagree on,
    people only those where the LLM agrees with no teacher; the student trains on the result."""
    from cascade.loop import DEFAULT_STEPS, CascadePlan, run_cascade
    from common.settings import get_settings
    from tickertag.progress import run_steps

    plan = CascadePlan(teachers=teacher or [], pool=pool, output=output, work=work,
                       first_round=first_round, rounds=rounds, budget=budget,
                       max_share=max_share, band=_band(band), replay=replay, people=people,
                       review_from=review_from, workers=workers, student=student,
                       student_config=config, student_epochs=epochs,
                       teacher_epochs=teacher_epochs, teacher_jobs=teacher_jobs,
                       pool_limit=pool_limit)
    res = run_steps(console, as_json, "cascade", lambda say, tick: run_cascade(
        plan, get_settings(), step or DEFAULT_STEPS, say=say, tick=tick))
    if as_json:
        print(json.dumps(res, default=str))
        return
    console.print(rounds_table(res["rounds"]))


def rounds_table(reports: list[dict]) -> Table:
    """One column a round, one row a figure (what was escalated, what it cost, what the student
    reached on valid): ten figures side by side cut every header at 80 columns."""
    t = Table(title="cascade rounds")
    t.add_column("figure")
    for r in reports:
        t.add_column(f"round {r['round']}", justify="right")

    def cells(r: dict) -> list[str]:
        llm, ppl, st = r.get("llm") or {}, r.get("people") or {}, r.get("student") or {}
        share = llm.get("calls_share_of_pool")
        return [str(llm.get("contested", "")), str(llm.get("escalated", "")),
                str(llm.get("llm_calls", "")),
                "" if share is None else f"{share:.1%}",
                "" if "llm_cost_usd" not in llm else f"${llm['llm_cost_usd']:.4f}",
                "" if "whole_pool_cost_usd" not in llm else f"${llm['whole_pool_cost_usd']:.4f}",
                str(llm.get("dead", "")), str(ppl.get("sent", "")), str(ppl.get("answered", "")),
                "" if st.get("valid_f1") is None else f"{st['valid_f1']:.4f}"]

    columns = [cells(r) for r in reports]
    names = ("contested headlines", "asked the LLM", "LLM calls answered", "answered, % of pool", "LLM $",
             "LLM $, whole pool", "no LLM answer", "sent to people", "answered by people",
             "student valid F1")
    for k, name in enumerate(names):
        t.add_row(name, *(c[k] for c in columns))
    return t


def llm_replay(
    recording: Annotated[str | None, typer.Option(
        help="JSONL of recorded answers (id, text, entities); default: the bundled strong-LLM "
             "answers for the default recipe's contested pool headlines.")] = None,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8089,
) -> None:
    """Serve recorded LLM answers as a chat endpoint.

    OpenAI-compatible (point
    TICKERTAG_LLM_BASE_URL at it); a headline the recording lacks gets HTTP 404."""
    from cascade.replay import RECORDING, main

    main(["--recording", recording or str(RECORDING), "--port", str(port)])


def register(app: typer.Typer) -> None:
    app.command()(cascade)
    from tickertag.cli_servers import llm_app

    llm_app.command("replay")(llm_replay)
