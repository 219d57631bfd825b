"""CLI for serving a trained model: ``tickertag serve`` (HTTP) and ``tickertag tag`` (bulk)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console()


def serve(
    model: Annotated[Path, typer.Option(help="A model directory (tickertag train/baseline).")],
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    max_batch: Annotated[int, typer.Option(help="Most texts per model call.")] = 64,
    max_wait_ms: Annotated[float, typer.Option(help="Longest wait to fill a batch.")] = 5.0,
) -> None:
    """HTTP service: POST /v1/ner {"texts": [...]} -> spans; /healthz /readyz /metrics /docs."""
    import uvicorn

    from workers.ner_service import create_app

    uvicorn.run(create_app(str(model), max_batch, max_wait_ms), host=host, port=port,
                log_level="warning")


def tag(
    source: Annotated[str, typer.Argument(help="CSV/JSONL/Parquet path or hub:<dataset id>.")],
    model: Annotated[Path, typer.Option(help="A model directory.")],
    run: Annotated[str | None, typer.Option("--run", "-r")] = None,
    limit: Annotated[int | None, typer.Option()] = None,
    threshold: Annotated[float | None, typer.Option()] = None,
) -> None:
    """Send a headline source through the `ner` queue (run `tickertag worker ner` to consume)."""
    from common.celery_app import app
    from common.settings import get_settings
    from producer.produce import Producer
    from producer.sources import iter_source
    from workers.ner import NER_TASK

    s = get_settings()
    p = Producer(app, s, run, task=NER_TASK,
                 task_kwargs={"model_dir": str(model.resolve()), "threshold": threshold})
    rep = p.run(iter_source(source, limit), Path(source).name)
    console.print(f"run {p.run_id}: enqueued {rep.enqueued} headlines in {rep.batches} batches "
                  f"for {model} ({rep.already_done} already done, {rep.rejected} rejected)")


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.command()(tag)
