"""CLI: ``tickertag demo``, the whole loop on the bundled data. The steps are plain functions in
``tickertag/demo.py``; this module parses options and prints the closing table."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from common.paths import SAMPLE_CSV
from common.settings import get_settings
from tickertag.cli_common import SHIPPED_SAMPLE, RunOpt, fail
from tickertag.tables import print_fitted

console = Console()


def demo(
    limit: Annotated[int, typer.Option(help="Headlines of the bundled sample the local LLM "
                                       "annotates (the sample has 3,000; it does ~1/s).")] = 100,
    source: Annotated[str, typer.Option(help="Headline source to annotate.",
                                        show_default=SHIPPED_SAMPLE)] = str(SAMPLE_CSV),
    run: RunOpt = None,
    workers: Annotated[int, typer.Option(help="Annotation worker processes.")] = 1,
    llm_test_headlines: Annotated[int, typer.Option(
        help="Gold test headlines the LLM answers, to measure its F1 here.")] = 30,
    model: Annotated[str, typer.Option(help="Where the compact model is trained (kept: a "
                                       "second demo reuses it).")] = "models/demo-spacy",
    epochs: Annotated[int, typer.Option(help="Epochs for the compact model (best on valid is "
                                        "kept).")] = 6,
    as_json: Annotated[bool, typer.Option("--json", help="Print the closing table as JSON.")
                       ] = False,
) -> None:
    """Run the whole loop on the bundled data in ~5 minutes.

    On the embedded defaults and 2 cores: the local LLM annotates a slice (then curation), is
    scored on gold headlines, a compact model is trained on the bundled labels, scored with a
    95% CI, and tags the whole sample through the ner queue."""
    from tickertag.demo import DemoOptions, run_demo
    from tickertag.progress import step_bars

    s = get_settings()
    o = DemoOptions(limit=limit, source=source, run_id=run or s.run_id, workers=workers,
                    llm_test_headlines=llm_test_headlines, model_dir=model,
                    epochs=epochs)
    with step_bars(console, disable=as_json) as (prog, tick):
        try:
            rows = run_demo(o, s, say=(lambda m: None) if as_json else prog.console.print,
                            tick=tick)
        except RuntimeError as e:
            raise fail("demo", e) from e
    if as_json:
        print(json.dumps(rows, default=str))
        return
    print_fitted(console, *closing_table(rows), title="LLM vs compact model (measured in this "
                 "demo)")
    if all(r["usd_per_million"] for r in rows):
        console.print(f"The compact model tags a million headlines for "
                      f"{rows[0]['usd_per_million'] / rows[1]['usd_per_million']:,.0f}x less than "
                      "the LLM endpoint at these prices (TICKERTAG_ENDPOINT_PRICE_PER_HOUR, "
                      "TICKERTAG_NER_PRICE_PER_HOUR).")


def closing_table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the demo's closing table, one column per system and one row per
    measure: two systems side by side fit an 80-column terminal with every value whole, where
    one row per system needs seven columns and rich cut them ("headlines…")."""
    def cell(value: float | None, fmt: str) -> str:
        return "n/a" if value is None else format(value, fmt)

    header = ["", *(r["role"] for r in rows)]
    measures = [
        ("model", [r["model"] for r in rows]),
        ("F1 [95% CI]", [f"{r['f1']:.3f} [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]"
                         for r in rows]),
        ("scored on", [r["on"] for r in rows]),
        ("headlines/s", [cell(r["headlines_per_s"], ".1f") for r in rows]),
        ("$ per hour", [f"{r['price']:g}" for r in rows]),
        ("$ per million headlines", [cell(r["usd_per_million"], ",.2f") for r in rows]),
    ]
    return header, [[name, *values] for name, values in measures]


def register(app: typer.Typer) -> None:
    app.command()(demo)
