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

STAGE_MODULES = (
    "tickertag.cli_annotate",
    "tickertag.cli_curate",
    "tickertag.cli_train",
    "tickertag.cli_review",
    "tickertag.cli_serve",
    "tickertag.cli_distil",
)


def _register_all() -> None:
    for name in STAGE_MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:  # that stage is not part of this build
                continue
            raise
        mod.register(app)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    _register_all()
    app()
