"""``tickertag push``: a model directory or an exported run to the Hugging Face Hub.

Why a command of its own: a model directory holds files that must not be published (resume
checkpoints, a half-written ``train_state.json``) and one that must (the card), and an exported
run's card may sit next to it as ``<stem>.README.md`` (``common/cards.py``) while the Hub wants
``README.md``. The plan (:func:`model_plan`, :func:`dataset_plan`) says exactly which files
go where, ``--dry-run`` prints it and sends nothing, and the upload sends exactly that plan.

The card: a model's is rewritten from its manifest before the upload (it is generated from
the manifest alone, so nothing is lost and it shows any score added to the manifest since
training); a dataset's card is the one ``tickertag export`` wrote (it names the run), written
afresh only when there is none. A dry run writes nothing.

The token is ``common.settings.Settings.hf_token`` (``HF_TOKEN`` or ``TICKERTAG_HF_TOKEN``),
else huggingface_hub's own login. It goes to ``HfApi`` and nowhere else: never printed, never
logged, and cut out of a Hub error's message before that message is shown.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from tickertag.cli_common import JsonOpt, emit_json, fail, one_line

console = Console()
log = logging.getLogger(__name__)

# Never uploaded from a model directory: resume state and hidden files (a .git, caches).
IGNORE = ["checkpoints/*", "train_state.json", ".*", "*/.*", "__pycache__/*", "*/__pycache__/*"]
_REPO = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


@dataclass
class Upload:
    """One file of the plan: where it is here, where it goes in the repository, its size."""

    source: str
    path_in_repo: str
    bytes: int
    note: str = ""


def ignored(rel: str) -> bool:
    """Whether a model directory's file (path relative to it) stays out of the upload: the
    same patterns go to ``upload_folder``, so the plan is what is sent."""
    return any(fnmatch(rel, p) for p in IGNORE)


def model_plan(model_dir: Path, card: str) -> list[Upload]:
    """The files ``upload_folder`` sends for ``model_dir``, its card (``card``, about to be
    written as README.md) included."""
    from training.card import CARD
    from training.manifest import refuse_links_outside

    refuse_links_outside(model_dir)  # a link would upload a file from outside the directory
    plan = [Upload(str(model_dir / CARD), CARD, len(card.encode("utf-8")),
                   "card, written from the manifest")]
    for p in sorted(model_dir.rglob("*")):
        rel = p.relative_to(model_dir).as_posix()
        if p.is_file() and rel != CARD and not ignored(rel):
            plan.append(Upload(str(p), rel, p.stat().st_size))
    return sorted(plan, key=lambda u: u.path_in_repo)


def dataset_plan(data_file: Path) -> tuple[list[Upload], str | None]:
    """The data file and its card (as the repository's README.md); the card's text when it
    has still to be written (no card next to the file), else None."""
    from common.cards import dataset_card, dataset_card_path

    card_path = dataset_card_path(data_file)
    text = None if card_path.exists() else dataset_card(data_file)
    size = card_path.stat().st_size if text is None else len(text.encode("utf-8"))
    note = "card of the export" if text is None else "card, written now (none was there)"
    return [Upload(str(data_file), data_file.name, data_file.stat().st_size),
            Upload(str(card_path), "README.md", size, note)], text


def _redact(message: str, token: str | None) -> str:
    return message.replace(token, "***") if token else message


def push(
    repo: Annotated[str, typer.Option(help="Hub repository, ORG/NAME (created when missing).")],
    model: Annotated[Path | None, typer.Option(help="A model directory (tickertag train, "
                                               "distil, export-onnx) to push as a model.")] = None,
    dataset: Annotated[Path | None, typer.Option(help="A run exported by tickertag export "
                                                 "(.parquet or .jsonl) to push as a dataset.")
                       ] = None,
    private: Annotated[bool, typer.Option("--private", help="Create the repository private "
                                          "(an existing one keeps its visibility).")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the upload plan (repository, "
                                          "type, files and sizes); send and write nothing.")
                       ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Upload a model or an exported run to the Hub.

    A model directory or an exported run, with its card, to the Hugging Face Hub.

    The token is HF_TOKEN (or TICKERTAG_HF_TOKEN, else huggingface_hub's login); it is never
    printed."""
    if (model is None) == (dataset is None):
        raise typer.BadParameter("give either --model DIR or --dataset FILE",
                                 param_hint="'--model' / '--dataset'")
    if not _REPO.match(repo):
        raise typer.BadParameter(f"{repo!r} is not ORG/NAME", param_hint="'--repo'")
    repo_type = "model" if model is not None else "dataset"
    card_text: str | None
    if model is not None:
        from training.card import model_card

        if not model.is_dir():
            raise fail("push", f"{model} is not a model directory")
        card_text = model_card(model)  # also refuses a directory that is no model directory
        plan = model_plan(model, card_text)
    else:
        assert dataset is not None
        if not dataset.is_file() or dataset.suffix not in (".parquet", ".jsonl"):
            raise fail("push", f"{dataset}: not a .parquet or .jsonl file (tickertag export "
                               "writes one)")
        plan, card_text = dataset_plan(dataset)
    out: dict[str, Any] = {"repo": repo, "repo_type": repo_type, "private": private,
                           "dry_run": dry_run, "files": [asdict(u) for u in plan],
                           "bytes": sum(u.bytes for u in plan), "url": None}
    if not dry_run:
        out["url"] = _upload(repo, repo_type, private, model, dataset, plan, card_text)
    if as_json:
        emit_json(out)
        return
    head = "dry run, nothing sent" if dry_run else f"pushed to {out['url']}"
    _say(f"{repo_type} repository {repo}{' (private)' if private else ''}: {head}")
    width = max(len(u.path_in_repo) for u in plan)
    for u in plan:
        _say(f"  {u.path_in_repo:<{width}}  {u.bytes:>14,} bytes"
             + (f"  ({u.note})" if u.note else ""))
    _say(f"{len(plan)} files, {out['bytes']:,} bytes")


def _say(line: str) -> None:
    """One line of the plan as is: no markup, no highlighting, never wrapped."""
    console.print(line, markup=False, highlight=False, soft_wrap=True)


def _upload(repo: str, repo_type: str, private: bool, model: Path | None,
            dataset: Path | None, plan: list[Upload], card_text: str | None) -> str:
    """Create the repository (if missing) and send the plan; the repository's URL."""
    from huggingface_hub import HfApi

    from common.settings import get_settings

    secret = get_settings().hf_token
    token = secret.get_secret_value() if secret else None
    api = HfApi(token=token)
    try:
        url = str(api.create_repo(repo, repo_type=repo_type, private=private, exist_ok=True))
        if model is not None:
            from training.card import write_model_card

            write_model_card(model)
            api.upload_folder(repo_id=repo, repo_type=repo_type, folder_path=str(model),
                              ignore_patterns=IGNORE,
                              commit_message=f"tickertag push: model {model.name}")
        else:
            card = Path(plan[1].source)
            if card_text is not None:
                card.write_text(card_text, encoding="utf-8")
            for u in plan:
                api.upload_file(path_or_fileobj=u.source, path_in_repo=u.path_in_repo,
                                repo_id=repo, repo_type=repo_type,
                                commit_message=f"tickertag push: {u.path_in_repo}")
    except (OSError, ValueError, RuntimeError) as e:  # the Hub's HTTP, auth and network errors
        raise fail("push", _redact(one_line(e), token)) from None
    log.info("pushed %s files to %s repository %s", len(plan), repo_type, repo)
    return url


def register(app: typer.Typer) -> None:
    app.command()(push)
