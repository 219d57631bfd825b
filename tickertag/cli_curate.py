"""CLI for curation: ``tickertag curate RUN`` (the same plain function the queue task runs)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table

from tickertag.cli_common import JsonOpt, emit_json, fail

console = Console()
T = TypeVar("T")


def _progress_tracker(progress: Progress):
    """A ``track`` for curate_run: one counting bar per pass (the total is not known)."""

    def track(it: Iterable[T], desc: str) -> Iterable[T]:
        task = progress.add_task(desc, total=None)
        for x in it:
            progress.advance(task)
            yield x
        progress.update(task, total=progress.tasks[task].completed)

    return track


def print_report(rep: dict[str, Any]) -> None:
    """The run's numbers, the largest clusters and examples of merged names, as rich tables."""
    t = Table(title=f"curated run {rep['run_id']}", show_header=False)
    for k in ("results", "valid", "with_company", "mentions", "clusters", "clusters_in_splits",
              "outside_splits", "sampled", "seconds"):
        t.add_row(k, f"{rep[k]:,}" if isinstance(rep[k], int) else str(rep[k]))
    for k, v in rep["splits"].items():
        t.add_row(f"split {k}", f"{v:,}")
    t.add_row("left out (invalid spans)", str(len(rep["invalid_spans"])))
    console.print(t)
    top = Table(title="largest clusters")
    top.add_column("representative")
    top.add_column("mentions", justify="right")
    for name, n in rep["largest"]:
        top.add_row(name, f"{n:,}")
    console.print(top)
    merged = Table(title="examples of merged names")
    merged.add_column("representative")
    merged.add_column("surface forms")
    for name, forms in rep["merged_examples"]:
        merged.add_row(name, ", ".join(forms))
    console.print(merged)


def unsettled_warning(run: str) -> str | None:
    """What to tell a user who curates a run whose batches are not all in the store yet (the
    queue's curation waits for that; a hand-started one reads what is there now). None when
    the run is settled, unknown to the ledger, or Redis cannot be asked (curating offline)."""
    import redis

    from common.run import Run
    from common.settings import get_settings

    try:
        ledger = Run(run, get_settings()).ledger
        st = ledger.stats()
        if not st["batches_enqueued"] or ledger.settled(st):
            return None
    except (redis.RedisError, OSError):
        return None
    return (f"run {run} is not complete ({ledger.in_flight(st)} batch(es) in flight, "
            f"{int(st['headlines_done'])} of {int(st['headlines_enqueued'])} headlines done): "
            f"curating what the store holds now")


def curate(
    run: Annotated[str, typer.Argument(help="Annotation run to curate.")],
    threshold: Annotated[float, typer.Option(help="Levenshtein similarity to merge names.")] = 85,
    fraction: Annotated[float, typer.Option(help="Share of each company cluster's headlines.")
                        ] = 0.05,
    empty_fraction: Annotated[float, typer.Option(help="Share of no-company headlines.")] = 0.05,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    split: Annotated[list[str] | None, typer.Option(
        help="NAME=FIRST-LAST years or NAME=DATE..DATE (YYYY-MM[-DD]), repeatable. Default: "
             "TICKERTAG_CURATE_SPLITS, else train=2010-2016 valid=2017-2018 test=2019-2020 when "
             "the run fills each, else 70/15/15% ranges from the run's own dates.")] = None,
    join_normalized: Annotated[bool, typer.Option(
        "--join-normalized", help="Also join every mention with the LLM's normalized name for it.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Cluster names, sample for review, split by date.

    Then export the training sets."""
    from common.settings import get_settings
    from workers.curate.pipeline import EmptyCuration, curate_run
    from workers.curate.sampling import SampleOptions, parse_split

    try:
        extra = {"splits": dict(parse_split(s) for s in split)} if split else {}
        opts = SampleOptions(threshold=threshold, company_fraction=fraction,
                             empty_fraction=empty_fraction, seed=seed,
                             join_normalized=join_normalized, **extra)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e
    warning = unsettled_warning(run)
    if warning:
        typer.echo(f"curate: warning: {warning}", err=True)
    try:
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                      MofNCompleteColumn(), console=console, transient=True,
                      disable=as_json) as progress:
            rep = curate_run(run, opts, get_settings(), track=_progress_tracker(progress))
    except EmptyCuration as e:  # a dead run: its cause and what to pass, on one line
        raise fail("curate", e) from e
    if as_json:
        emit_json(rep)
        return
    print_report(rep)
    splits = ", ".join(f"{k}.jsonl" for k in rep["splits"])
    console.print(f"written to {rep['output']} (cluster_report.md, clusters.jsonl, report.json, "
                  f"{splits}, hf/, gliner/, spanmarker/)")


def register(app: typer.Typer) -> None:
    """Add ``curate`` to the ``tickertag`` command."""
    app.command()(curate)
