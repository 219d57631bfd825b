"""CLI for comparing systems: report (F1 with CIs, speed, cost, frontier plots) and
learning-curve. Thin shells: the work is in ``training/report.py`` and ``training/learning_curve.py``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from tickertag.cli_common import JsonOpt, emit_json, fail
from tickertag.tables import print_fitted

console = Console()


def report(
    system: Annotated[list[str] | None, typer.Option(help="NAME=MODEL_DIR (repeatable).")
                      ] = None,
    out: Annotated[str, typer.Option(help="Report directory (report.md, report.html, PNGs).")
                   ] = "var/report",
    test: Annotated[list[str] | None, typer.Option(
        help="Test JSONL (repeatable; default benzinga_gold_test + benzinga_gold_test2: each "
             "file and their union are reported).")] = None,
    llm_pred: Annotated[str | None, typer.Option(help="LLM predictions JSONL on the test "
                                                 "headlines (e.g. an annotation export).")] = None,
    llm_headlines_per_s: Annotated[float | None, typer.Option(
        help="LLM throughput (the case study's 31/s for Llama 3.1 70B, unless you measured "
             "yours).")] = None,
    curve: Annotated[list[str] | None, typer.Option(help="learning_curve.json to plot "
                                                    "(repeatable: runs are pooled).")] = None,
    pair: Annotated[list[str] | None, typer.Option(
        help="A:B system names for a paired bootstrap of F1(A) - F1(B) (repeatable).")] = None,
    silver_curve: Annotated[list[str] | None, typer.Option(
        help="NAME=STUDENT_DIR trained by `distil --max-silver N` (repeatable): plots student "
             "F1 against silver-set size.")] = None,
    aliases: Annotated[str | None, typer.Option(
        help="An alias table (tickertag aliases build): adds linking quality on the test "
             "files' gold spans.")] = None,
    cpu_price: Annotated[float, typer.Option(help="$/h of a CPU instance.")] = 0.10,
    llm_price: Annotated[float, typer.Option(help="$/h of the LLM endpoint.")] = 8.0,
    reuse: Annotated[str | None, typer.Option(help="An earlier report.json: keep its system "
                                              "rows as measured then (e.g. to add curve runs).")
                     ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print report.json (systems, curve, "
                                          "pairs, ...) as one JSON object instead of report.md.")
                       ] = False,
    open_: Annotated[bool, typer.Option("--open", help="Open report.html in the default web "
                                        "browser when written.")] = False,
) -> None:
    """Compare systems on the test files.

    F1 with CIs, headlines/s, $ per million, the
    accuracy/speed/cost frontier, paired differences, plots."""
    import webbrowser

    from common.paths import LABELED_DIR
    from linking.evaluate import report_figures
    from tickertag.progress import step_bars
    from training.report import build_report

    systems = dict(s.split("=", 1) for s in system or [])
    if not systems and not reuse:
        raise typer.BadParameter("name at least one --system NAME=MODEL_DIR, or --reuse")
    pairs = []
    for p in pair or []:
        if ":" not in p:
            raise typer.BadParameter(f"--pair {p!r}: write A:B (two system names)")
        a, b = p.split(":", 1)
        pairs.append((a, b))
    tests = test or [str(LABELED_DIR / "benzinga_gold_test.jsonl"),
                     str(LABELED_DIR / "benzinga_gold_test2.jsonl")]
    try:
        linking = report_figures(aliases, tests) if aliases else None
        with step_bars(console, disable=as_json) as (_, tick):
            path = build_report(systems, tests, out, llm_pred, llm_headlines_per_s, curve,
                                {"cpu": cpu_price, "llm": llm_price}, reuse, pairs,
                                dict(s.split("=", 1) for s in silver_curve or []), linking,
                                progress=tick)
    except (ValueError, FileNotFoundError) as e:
        raise fail("report", e) from e
    page = (path.parent / "report.html").resolve()
    if open_:
        webbrowser.open(page.as_uri())
    rep = json.loads((path.parent / "report.json").read_text())
    if as_json:
        emit_json({"report": str(path), **rep})
        return
    print_report(rep, [Path(t).name for t in tests])
    console.print(f"written to {path} (+ report.html, PNG plots)")
    console.print(f"report.html: {page}", soft_wrap=True, highlight=False)


def print_report(rep: dict[str, Any], files: list[str]) -> None:
    """report.json as tables that fit the terminal (the same tables report.md holds, from
    ``training.report.sections``), not report.md's raw Markdown."""
    from training.report import sections

    console.print(f"Entity-level micro P/R/F1 on exact character spans of {', '.join(files)} "
                  "(all together; 95% bootstrap CI over headlines).", highlight=False)
    for s in sections(rep.get("systems") or [], files, rep.get("curve"), rep.get("pairs"),
                      rep.get("silver_curve"), rep.get("linking")):
        print_fitted(console, s.header, s.rows, s.title or "systems", s.right)
        if s.intro:
            console.print(s.intro, highlight=False)
    for note in rep.get("notes") or []:
        console.print(f"- {note}", highlight=False)


def learning_curve(
    sizes: Annotated[list[int], typer.Option("--size", help="Training sizes (repeatable).")],
    seeds: Annotated[list[int], typer.Option("--seed", help="Seeds (repeatable).")],
    out: Annotated[str, typer.Option()] = "var/learning-curve",
    epochs: Annotated[int, typer.Option()] = 6,
    llm_labels: Annotated[str | None, typer.Option(help="LLM-labelled JSONL of the same "
                                                   "headlines (default benzinga_llm_train).")
                          ] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """GLiNER on reviewed vs LLM-labelled headlines.

    N of each, several seeds (weak supervision).

    Resumable: runs already in OUT/learning_curve.json are skipped."""
    from tickertag.progress import step_bars
    from training.learning_curve import run_curve

    kw = {"llm_path": llm_labels} if llm_labels else {}
    with step_bars(console, disable=as_json) as (_, tick):
        res = run_curve(sizes, seeds, out, epochs, threads, progress=tick, **kw)
    if as_json:
        emit_json({"output": f"{out}/learning_curve.json", "runs": res})
        return
    console.print(f"{len(res)} runs -> {out}/learning_curve.json")


def register(app: typer.Typer) -> None:
    app.command()(report)
    app.command("learning-curve")(learning_curve)
