"""CLI for human review: ``tickertag review push|pull|serve`` (the functions the queue runs)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from tickertag.cli_common import JsonOpt, emit_json, fail
from tickertag.tables import print_fitted

console = Console()
review_app = typer.Typer(name="review", no_args_is_help=True,
                         help="Human review in Argilla: push, pull, a local server.\n\n"
                              "Push curated splits, pull reviewed spans, run a local "
                              "Argilla server.")

SplitOpt = Annotated[list[str] | None, typer.Option(
    "--split", help="Split to handle, repeatable; default train, valid, test.")]


def _splits(split: list[str] | None) -> tuple[str, ...]:
    from workers.review.records import SPLITS

    return tuple(split or SPLITS)


@review_app.command("push")
def push_cmd(
    run: Annotated[str, typer.Argument(help="Run whose curated splits to push.")],
    input_dir: Annotated[Path | None, typer.Option(
        help="Directory with {train,valid,test}.jsonl; default <results>/<run>/curated.")] = None,
    split: SplitOpt = None,
    queue: Annotated[bool, typer.Option(
        "--queue", help="Send to the review queue instead of running here.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Push curated splits to Argilla, one dataset per split.

    Creates or updates them; pushing again never duplicates."""
    if queue:
        from workers.review.tasks import push_task

        res = push_task.delay(run, str(input_dir) if input_dir else None, list(_splits(split)))
        if as_json:
            emit_json({"run": run, "task": push_task.name, "task_id": res.id, "queued": True})
            return
        console.print(f"sent tickertag.review.push for {run}: task {res.id}")
        return
    from tickertag.progress import step_bars
    from workers.review.argilla import push
    from workers.review.server import ReviewError

    os.environ.setdefault("TQDM_DISABLE", "1")  # the SDK's per-batch bars: ours instead
    try:
        with step_bars(console, disable=as_json) as (_, tick):
            rep = push(run, input_dir, _splits(split), progress=tick)
    except ReviewError as e:
        raise fail("review push", e) from None
    if as_json:
        emit_json(rep)
        return
    rows = []
    for name, r in rep["splits"].items():
        if "skipped" in r:
            rows.append([name, r["skipped"], "", "", "", ""])
            continue
        rows.append([name, r["dataset"] + (" (new)" if r["created"] else ""), str(r["records"]),
                     str(r["priority"]), str(len(r["rejected"])), str(r["seconds"])])
    print_fitted(console, ["split", "dataset", "records", "review first", "left out", "seconds"],
                 rows, f"pushed {run} to workspace {rep['workspace']} ({rep['seconds']} s)",
                 right={2, 3, 4, 5})


def print_progress(rep: dict[str, Any]) -> None:
    """Per split: submitted / pending / discarded, reviewer agreement, LLM-vs-review F1; then
    where each split was written (a path is too long for a column in 80)."""
    header = ["split", "records", "submitted", "pending", "discarded", "reviewers agree",
              "LLM P / R / F1"]
    rows, written = [], []
    for name, r in rep["splits"].items():
        if r.get("missing"):
            rows.append([name, f"no dataset {r['dataset']}", *[""] * 5])
            continue
        ag = r["reviewers_agreement"]
        agree = (f"{ag['exact']}/{ag['records']} exact, F1 {ag['pairwise_f1']:.3f}"
                 if ag["records"] else "-")
        llm = r["llm_vs_reviewed"]
        llm_s = f"{llm['precision']:.3f} / {llm['recall']:.3f} / {llm['f1']:.3f}" if llm else "-"
        rows.append([name, str(r["records"]), str(r["submitted"]), str(r["pending"]),
                     str(r["discarded"]), agree, llm_s])
        if r["output"]:
            written.append(f"{name}: {r['output']}")
        for bad in r["invalid_responses"][:5]:
            console.print(f"[yellow]left out[/yellow] {bad}")
    print_fitted(console, header, rows, f"review of {rep['run']} ({rep['seconds']} s)",
                 right={1, 2, 3, 4})
    for line in written:
        console.print(f"written {line}", soft_wrap=True, highlight=False)


@review_app.command("pull")
def pull_cmd(
    run: Annotated[str, typer.Argument(help="Run whose review to pull.")],
    out_dir: Annotated[Path | None, typer.Option(
        help="Where to write {split}.jsonl; default <results>/<run>/reviewed.")] = None,
    split: SplitOpt = None,
    dry_run: Annotated[bool, typer.Option(
        "--progress-only", help="Report progress, write nothing.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Write the submitted reviews as span JSONL.

    Works while review is under way."""
    from tickertag.progress import step_bars
    from workers.review.argilla import pull
    from workers.review.server import ReviewError

    try:
        with step_bars(console, disable=as_json) as (_, tick):
            rep = pull(run, out_dir, _splits(split), write=not dry_run, progress=tick)
    except ReviewError as e:
        raise fail("review pull", e) from None
    if as_json:
        emit_json(rep)
        return
    print_progress(rep)


@review_app.command("serve")
def serve_cmd(
    port: Annotated[int | None, typer.Option(envvar="TICKERTAG_ARGILLA_PORT",
                                             help="Port (default 6900).")] = None,
    home: Annotated[Path | None, typer.Option(envvar="TICKERTAG_ARGILLA_HOME",
                                              help="Data directory (default var/argilla).")
                    ] = None,
) -> None:
    """Run a local Argilla server until Ctrl-C.

    In its own venv, on an in-memory search emulator."""
    from workers.review.argilla_settings import ArgillaSettings
    from workers.review.server import ReviewError, local_credentials, start_server

    s = ArgillaSettings()
    if port is not None:
        s.port = port
    if home is not None:
        s.home = home
    api_key, password = local_credentials(s)
    log = s.home / "server.log"
    console.print(f"starting Argilla (log: {log}) ...")
    try:
        proc = start_server(s, log, api_key, password)
    except (ReviewError, RuntimeError, TimeoutError) as e:
        raise fail("review serve", e) from None
    url = f"http://{s.host}:{s.port}"
    console.print(f"Argilla is up: [bold]{url}[/bold]\n"
                  f"  user: argilla  password: {password}\n"
                  f"  export TICKERTAG_ARGILLA_URL={url}\n"
                  f"  export TICKERTAG_ARGILLA_API_KEY={api_key}\n"
                  "Ctrl-C stops it (data stays in "
                  f"{s.home}; the search index is rebuilt at the next start).")
    stop = False

    def _on_signal(_sig: int, _frame: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _on_signal)
    try:
        while not stop and proc.alive():
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        proc.stop(timeout=20)
    if not stop and proc.proc.returncode not in (0, None, -signal.SIGTERM):
        console.print(f"[red]Argilla exited ({proc.proc.returncode}):[/red]\n{proc.tail()}")
        raise typer.Exit(1)
    console.print("Argilla stopped.")


@review_app.command("install-server")
def install_server_cmd(
    venv: Annotated[Path | None, typer.Option(
        envvar="TICKERTAG_ARGILLA_VENV",
        help="Where to build it (default: .venv-argilla under TICKERTAG_HOME, else under the "
             "current directory).")] = None,
    python: Annotated[str | None, typer.Option(
        help="Interpreter that creates the venv (default: the one running tickertag).")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print the target and the commands; install nothing.")] = False,
    force: Annotated[bool, typer.Option(
        "--force", help="Run every step even when the venv is up to date.")] = False,
) -> None:
    """Build the Argilla server's own venv (for `review serve`).

    argilla-server, click<8.2 and the osmem search emulator, in a venv of their own (Argilla
    needs huggingface_hub>=1, tickertag below 1). Idempotent: an up-to-date venv is left as is."""
    from workers.review.server_install import InstallFailed, default_venv, describe, install

    target = (venv or default_venv()).absolute()
    if dry_run:
        for line in describe(target, python):
            console.print(line, soft_wrap=True, highlight=False, markup=False)
        return
    try:
        install(target, python, force,
                say=lambda m: console.print(m, soft_wrap=True, highlight=False, markup=False),
                running=lambda step: console.status(f"{step.what} ...", spinner="dots"))
    except InstallFailed as e:
        raise fail("review install-server", e) from None


def register(app: typer.Typer) -> None:
    """Add ``review`` to the ``tickertag`` command."""
    app.add_typer(review_app)
