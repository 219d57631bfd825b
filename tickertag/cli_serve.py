"""CLI for serving a trained model: ``tickertag serve`` (HTTP) and ``tickertag tag`` (bulk)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from tickertag.cli_common import JsonOpt, RunOpt, emit_json, fail

console = Console()


def serve(
    model: Annotated[Path, typer.Option(help="A model directory (tickertag train/baseline).")],
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    max_batch: Annotated[int, typer.Option(help="Most texts per model call.")] = 64,
    max_chars: Annotated[int | None, typer.Option(
        help="Most characters per model call (default 8,000): bounds how long a small request "
             "waits behind large ones (lower: shorter waits, slower large requests).")] = None,
    max_wait_ms: Annotated[float, typer.Option(
        help="Hold a batch open this long for more requests (0: batch only what arrived while "
             "the model was busy; a lone request starts at once).")] = 0.0,
    aliases: Annotated[str | None, typer.Option(
        envvar="TICKERTAG_ALIASES", help="Alias table: entities gain ticker and link_score; read again, "
                                   "without a restart, once it or its overrides change.")
                       ] = None,
    workers: Annotated[int, typer.Option(
        min=1, help="Service processes sharing the port, one model each (uvicorn's workers; "
                    "/metrics sums them all). 2 on 2 cores serves many small concurrent "
                    "requests faster, at twice the model's memory.")] = 1,
    threads: Annotated[int, typer.Option(
        min=1, help="CPU threads of each worker's model (torch, BLAS, OpenMP). 1 suits spaCy "
                    "pipelines and small machines; more helps a GLiNER on many cores.")] = 1,
) -> None:
    """Serve a model over HTTP.

    POST /v1/ner {"texts": [...]} -> spans; /healthz /readyz /metrics /docs.

    The model directory is checked (``servable_manifest``, the check ``predict`` makes through
    ``load_tagger``) before the server starts: the weights load inside uvicorn's startup, where
    a refused directory ends as uvicorn's traceback and exit 3 instead of one line and exit 1."""
    import uvicorn

    from training.inference import servable_manifest
    from workers.ner.service import MAX_CALL_CHARS, create_app

    try:
        servable_manifest(model)
    except (OSError, ValueError) as e:
        raise fail("serve", e) from e
    console.print(f"serving {model} on http://{host}:{port} (POST /v1/ner, docs at /docs; "
                  "ready when /readyz answers 200)")
    from common.settings import get_settings

    options = {"model_dir": str(model), "max_batch": max_batch, "max_wait_ms": max_wait_ms,
               "aliases": aliases or get_settings().aliases,
               "max_chars": max_chars or MAX_CALL_CHARS, "threads": threads}
    if workers == 1:
        uvicorn.run(create_app(**options), host=host, port=port, log_level="warning")
        return
    from workers.ner.multiproc import FACTORY, prepare

    prepare(options)
    uvicorn.run(FACTORY, factory=True, workers=workers, host=host, port=port,
                log_level="warning")


def tag(
    source: Annotated[str, typer.Argument(help="CSV/JSONL/Parquet path or hub:<dataset id>.")],
    model: Annotated[Path, typer.Option(help="A model directory.")],
    run: RunOpt = None,
    limit: Annotated[int | None, typer.Option()] = None,
    threshold: Annotated[float | None, typer.Option()] = None,
    as_json: JsonOpt = False,
) -> None:
    """Send a headline source through the ner queue.

    Run `tickertag worker ner` to consume it."""
    from common.celery_app import app
    from common.paths import to_shared
    from common.settings import get_settings
    from common.task_names import NER_TASK
    from producer.produce import Producer
    from producer.sources import iter_source
    from tickertag.progress import step_bars
    from training.manifest import model_fingerprint

    s = get_settings()
    # the run is of the model now in the directory: workers refuse one retrained meanwhile
    fingerprint = model_fingerprint(model) if model.is_dir() else None
    with step_bars(console, disable=as_json) as (_, tick):
        p = Producer(app, s, run, task=NER_TASK,
                     task_kwargs={"model_dir": to_shared(model), "threshold": threshold,
                                  "fingerprint": fingerprint},
                     on_progress=lambda r: tick("enqueue", r.enqueued, limit))
        tick("enqueue", 0, limit)
        rep = p.run(iter_source(source, limit), Path(source).name)
    if as_json:
        from dataclasses import asdict

        emit_json({"run_id": p.run_id, "source": source, "model": str(model),
                   "fingerprint": fingerprint, **asdict(rep)})
        return
    console.print(f"run {p.run_id}: enqueued {rep.enqueued} headlines in {rep.batches} batches "
                  f"for {model} (fingerprint {fingerprint}; {rep.already_done} already done, "
                  f"{rep.rejected} rejected)")


def export_onnx(
    model: Annotated[Path, typer.Option(help="A GLiNER model directory (tickertag train).")],
    output: Annotated[Path, typer.Option(help="Directory for the ONNX model (a model directory "
                                         "that predict/serve/tag accept).")],
    quantize: Annotated[bool, typer.Option(help="Dynamic int8 weights (smaller, faster on "
                                           "CPU).")] = True,
    recipe: Annotated[str, typer.Option(help="Which MatMuls get int8 weights: int8-ffn-fp32 "
                                        "(encoder feed-forward kept fp32) or int8 (all).")
                      ] = "int8-ffn-fp32",
    check: Annotated[str | None, typer.Option(help="Labelled JSONL to compare F1 on (default "
                                              "benzinga_gold_test).")] = None,
    no_check: Annotated[bool, typer.Option("--no-check", help="Skip the F1 comparison.")] = False,
    max_f1_drop: Annotated[float, typer.Option(help="Largest accepted F1 drop (0.005 = half a "
                                               "point).")] = 0.005,
    as_json: Annotated[bool, typer.Option("--json", help="Print the ONNX model's manifest "
                                          "(with the F1 check) as one JSON object.")] = False,
) -> None:
    """Export a GLiNER to ONNX and check its F1.

    Int8 by default; its F1 is compared with the torch model's.

    Exits 1 when F1 drops by more than --max-f1-drop (the directory is kept for inspection)."""
    from tickertag.progress import step_bars
    from training.onnx_export import DEFAULT_CHECK, ExportCheckFailed
    from training.onnx_export import export_onnx as _export

    try:
        with step_bars(console, disable=as_json) as (_, tick):
            m = _export(model, output, quantize, None if no_check else (check or DEFAULT_CHECK),
                        max_f1_drop, recipe=recipe, progress=tick)
    except (ExportCheckFailed, ValueError, FileNotFoundError) as e:
        raise fail("export-onnx", e) from e
    if as_json:
        emit_json({"output": str(output), **m})
        return
    c = m.get("check")
    msg = f"wrote {output} ({m['onnx_file']})"
    if c:
        msg += (f": F1 {c['onnx_f1']:.4f} vs torch {c['torch_f1']:.4f} on {c['headlines']} "
                f"headlines ({c['f1_change']:+.4f}); {c['onnx_headlines_per_s']} vs "
                f"{c['torch_headlines_per_s']} headlines/s")
    console.print(msg)


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.command("export-onnx")(export_onnx)
    app.command()(tag)
