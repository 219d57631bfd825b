"""CLI for spaCy's own training loop: ``export-spacy`` writes a blank spaCy recipe as
``config.cfg`` plus ``.spacy`` corpora for ``python -m spacy train``; ``import-spacy`` turns the
pipeline it chose into a model directory every command takes. The work is in
``training/spacy_project.py``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from tickertag.cli_common import emit_json

console = Console()

Config = Annotated[str, typer.Option(
    help="A blank spaCy TrainConfig file or shipped recipe (student, student_wide).")]
TrainFiles = Annotated[list[str] | None, typer.Option(
    "--train", help="Training JSONL (repeatable; each headline once, first file wins; "
                    "default: the recipe's).")]
ValidFiles = Annotated[list[str] | None, typer.Option(
    "--valid", help="Validation JSONL (repeatable; default: the recipe's).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the outcome as one JSON object.")]


def _config(config: str, train: list[str] | None, valid: list[str] | None):
    from training.config import TrainConfig

    return TrainConfig.from_file(config, train=train or None, valid=valid or None)


def export_spacy(
    output: Annotated[str, typer.Option(help="Folder for config.cfg, train.spacy, dev.spacy.")],
    config: Config = "student",
    train: TrainFiles = None,
    valid: ValidFiles = None,
    as_json: AsJson = False,
) -> None:
    """Write a recipe as spaCy's config.cfg and corpora.

    For `python -m spacy train`: the same architecture, schedule and rows as `tickertag train
    spacy --config` with the recipe."""
    from training.spacy_project import export_project

    with console.status("writing the corpora"):
        res = export_project(_config(config, train, valid), output)
    if as_json:
        emit_json(res)
        return
    console.print(f"{res['config']}: {res['train_headlines']:,} train / "
                  f"{res['valid_headlines']:,} dev headlines, {res['spans_dropped']} spans "
                  f"that cut a token left out")
    console.print("train with:")
    print(f"  {res['command']}")  # one line, unwrapped: to copy


def import_spacy(
    pipeline: Annotated[str, typer.Argument(help="A pipeline `spacy train` wrote "
                                            "(OUTPUT/model-best).")],
    output: Annotated[str, typer.Option(help="Model directory to write.")],
    config: Config = "student",
    valid: ValidFiles = None,
    as_json: AsJson = False,
) -> None:
    """Make a pipeline spaCy trained a model directory.

    For predict, serve and the ner queue; scored on the recipe's valid files with the
    project's F1, as `train` scores."""
    from training.spacy_project import import_pipeline

    with console.status("scoring on valid"):
        m = import_pipeline(pipeline, output, _config(config, None, valid))
    if as_json:
        emit_json(m)
        return
    f1 = m.get("valid_f1")
    console.print(f"{output}: valid F1 {'n/a' if f1 is None else f'{f1:.4f}'}")


def register(app: typer.Typer) -> None:
    app.command("export-spacy")(export_spacy)
    app.command("import-spacy")(import_spacy)
