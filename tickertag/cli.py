"""The ``tickertag`` command. Each stage registers its own commands from its own module
(``tickertag/cli_<stage>.py`` exposing ``register(app)``), so stages stay independent."""

from __future__ import annotations

import importlib
import logging

import typer

app = typer.Typer(
    name="tickertag",
    help="Turn financial headlines into a cheap, accurate company tagger: LLM annotation at "
    "scale on Celery + Redis, curation, review in Argilla, compact-model training and serving.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

STAGE_MODULES = (  # in this order in --help
    "tickertag.cli_demo",
    "tickertag.cli_annotate",
    "tickertag.cli_status",
    "tickertag.cli_servers",
    "tickertag.cli_config",
    "tickertag.cli_curate",
    "tickertag.cli_report",
    "tickertag.cli_train",
    "tickertag.cli_review",
    "tickertag.cli_serve",
    "tickertag.cli_distil",
    "tickertag.cli_cascade",
    "tickertag.cli_link",
    "tickertag.cli_push",
    "tickertag.cli_spacy",
)


def _register_all() -> None:
    from tickertag.cli_common import apply_conventions

    for name in STAGE_MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:  # that stage is not part of this build
                continue
            raise
        mod.register(app)
    apply_conventions(app)  # runtime failures: exit 1 with a one-line reason, never a traceback


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"tickertag {version('tickertag')}")
        except PackageNotFoundError:
            print("tickertag (not installed as a package)")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Turn financial headlines into a cheap, accurate company tagger."""


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    _register_all()
    app()
