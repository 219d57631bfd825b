"""CLI for the annotation stage: produce, worker, requeue, export, reset. Thin shells: the work
is in ``producer/`` and ``workers/annotate/`` (``tickertag status`` is ``cli_status``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from common.paths import SAMPLE_CSV
from common.settings import get_settings
from tickertag.cli_common import SHIPPED_SAMPLE, JsonOpt, RunOpt, emit_json

console = Console()


def _app():
    from common.celery_app import app

    return app


def produce(
    source: Annotated[str, typer.Argument(help="CSV/JSONL/Parquet path, or hub:<dataset id> "
                                          "(hub:Zihan1004/FNSPID streams Benzinga rows).",
                                          show_default=SHIPPED_SAMPLE)] = str(SAMPLE_CSV),
    run: RunOpt = None,
    limit: Annotated[int | None, typer.Option(help="Read at most this many rows.")] = None,
    batch_size: Annotated[int | None, typer.Option(envvar="TICKERTAG_BATCH_SIZE",
                                                   help="Headlines per task (default 128).")
                          ] = None,
    estimate: Annotated[bool, typer.Option(
        "--estimate", help="Only count the source's headlines, prompt tokens and $ at the "
                           "per-token prices; send nothing.")] = False,
    batch_api: Annotated[bool, typer.Option(
        "--batch-api", help="Ask the LLM through the provider's Batch API (one remote batch "
                            "per task, at TICKERTAG_BATCH_DISCOUNT x the token prices) instead "
                            "of one call per headline; same as TICKERTAG_LLM_MODE=batch.")
                         ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Stream headlines into the annotate queue.

    With dedup and backpressure; a run is resumable."""
    from dataclasses import asdict

    from producer.produce import Producer
    from producer.sources import iter_source

    s = get_settings()
    if estimate:
        from producer.estimate import estimate as estimate_source
        from producer.estimate import local_tokenizer

        est = estimate_source(iter_source(source, limit), s, local_tokenizer(s))
        if as_json:
            emit_json({"source": source, **est})
            return
        console.print(f"{source}: {est['headlines']:,} distinct headlines ({est['rows']:,} rows, "
                      f"{est['rejected']:,} invalid); {est['prompt_tokens']:,} prompt tokens "
                      f"({est['prompt_tokens_counted_by']}) + ~{est['completion_tokens']:,} "
                      f"completion tokens = ${est['usd']:.4f} at ${s.price_input_per_mtok:g} / "
                      f"${s.price_output_per_mtok:g} per million tokens; nothing sent")
        return
    if batch_size:
        s = s.model_copy(update={"batch_size": batch_size})
    if batch_api:
        s = s.model_copy(update={"llm_mode": "batch"})
    with Progress(TextColumn("[bold]enqueue"), BarColumn(), TextColumn("{task.completed} headlines"),
                  TimeElapsedColumn(), console=console, disable=as_json) as prog:
        task = prog.add_task("enqueue", total=limit)
        p = Producer(_app(), s, run, on_progress=lambda r: prog.update(task, completed=r.enqueued))
        rep = p.run(iter_source(source, limit), source_name=Path(source).name)
    if as_json:
        emit_json({"run_id": p.run_id, "source": source, **asdict(rep)})
        return
    console.print(f"run [bold]{p.run_id}[/]: read {rep.rows} rows, enqueued {rep.enqueued} "
                  f"headlines in {rep.batches} batches; {rep.duplicates} duplicates, "
                  f"{rep.already_done} already done, {rep.rejected} rejected"
                  + (f", re-sent {rep.resent_pending} pending" if rep.resent_pending else ""))
    if rep.budget_reached:
        console.print(f"[yellow]budget reached[/]: the run spent its ${s.budget_usd:g}; the rest "
                      "of the source is unsent: raise TICKERTAG_BUDGET_USD and run produce again")
    for ex in rep.rejected_examples:
        console.print(f"  [yellow]rejected[/] {ex}")


def worker(
    queue: Annotated[str, typer.Argument(help="annotate | curate | review | train | ner")],
    concurrency: Annotated[int, typer.Option("--concurrency", "-c",
                                             help="Batches processed at once by this worker.")] = 4,
    pool: Annotated[str, typer.Option(help="Celery pool: threads suits the I/O-bound LLM calls; "
                                      "prefork suits CPU-bound stages.")] = "threads",
    loglevel: Annotated[str, typer.Option("--loglevel", "-l")] = "INFO",
) -> None:
    """Run a Celery worker for one queue.

    Start as many as you like, on any host."""
    from common.celery_app import STAGES

    if queue not in STAGES:
        raise typer.BadParameter(f"unknown queue {queue!r}; choose from {', '.join(STAGES)}")
    _app().worker_main(["worker", "-Q", queue, "-P", pool, "-c", str(concurrency), "-E",
                        "-l", loglevel, "-n", f"{queue}-%h-%i"])


def requeue(
    run: RunOpt = None,
    error_type: Annotated[str | None, typer.Option(help="Only dead letters of this kind "
                                                   "(http, timeout, connection, task).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Send a run's dead-lettered headlines back to be redone.

    Each batch goes back to the queue it came from (annotate for an annotation run)."""
    from producer.requeue import requeue_dead

    s = get_settings()
    run_id = run or s.run_id
    b, h = requeue_dead(_app(), s, run_id, error_type)
    if as_json:
        emit_json({"run_id": run_id, "batches": b, "headlines": h})
        return
    console.print(f"requeued {h} headlines in {b} batches")


def export(
    output: Annotated[Path, typer.Argument(help="Output .jsonl or .parquet (datasets-loadable).")],
    run: RunOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Merge a run's result shards into one file.

    One row per headline/model/prompt, with a
    dataset card for the Hub next to it (README.md, or <stem>.README.md if that is taken)."""
    from common.cards import write_dataset_card
    from common.run import Run

    s = get_settings()
    run_id = run or s.run_id
    n = Run(run_id, s).store.export(str(output))
    card = write_dataset_card(output, run_id)
    if as_json:
        emit_json({"run_id": run_id, "output": str(output), "results": n})
        return
    console.print(f"wrote {n} results to {output} (dataset card: {card})")


def reset(
    run: RunOpt = None,
    results: Annotated[bool, typer.Option("--results", help="Also delete the run's result "
                                          "store (results, dead letters).")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Forget a run in Redis so it can start over.

    Its counters and dedup set go; the LLM answer cache stays."""
    from common.run import Run

    s = get_settings()
    run_id = run or s.run_id
    if not yes:
        typer.confirm(f"reset run {run_id!r}{' and delete its results' if results else ''}?",
                      abort=True)
    r = Run(run_id, s)
    r.ledger.reset()
    if results:
        r.store.delete()
    console.print(f"run {run_id} reset")


def register(app: typer.Typer) -> None:
    app.command()(produce)
    app.command()(worker)
    app.command()(requeue)
    app.command()(export)
    app.command()(reset)
