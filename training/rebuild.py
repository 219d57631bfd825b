"""The commands that rebuild a model directory, read back from its ``tickertag.json``.

Why: the manifest keeps the whole training config, but a config is not a command; a model card
(``training/card.py``) says how to make the model again in the words a user types. The shortest
faithful form is chosen: a shipped recipe (``--config NAME``) plus the options that differ from
it; when no recipe and options can say it (a list of validation files, a setting no option
takes), the config itself as ``config.json`` for ``--config``. Distilled students get the
``tickertag distil`` command, ONNX exports the training command and then ``export-onnx``.
Paths are shown as ``common.cards.shown_path`` shows them, so a command works from
``TICKERTAG_HOME`` on any machine and carries no absolute path of this one.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

from common.cards import shown_path
from common.paths import home

DEFAULT_CHECK = "data/labeled/benzinga_gold_test.jsonl"  # export-onnx's default --check
GOLD_TRAIN = "data/labeled/benzinga_gold_train.jsonl"  # the gazetteer's default --train


def is_path(value: str) -> bool:
    """Whether a config value names a file or directory (else it is an id: a hub id, a package
    name, ``local:minilm``), so that only paths are rewritten for a card."""
    return Path(value).is_absolute() or Path(value).exists() or (home() / value).exists()


def shown_value(value: str) -> str:
    """A start point or model name as a card shows it: paths by ``shown_path``, ids as is."""
    return shown_path(value) if is_path(value) else value


def shown_paths(paths: str | list[str] | None) -> list[str]:
    """One path or a list of them (``train``/``valid`` take either), each as a card shows it."""
    if not paths:
        return []
    return [shown_path(p) for p in ([paths] if isinstance(paths, str) else paths)]


# TrainConfig fields `tickertag train` sets by option; the rest come from a recipe (--config).
TRAIN_FLAGS = {"train": "--train", "valid": "--valid", "base": "--base", "epochs": "--epochs",
               "batch_size": "--batch-size", "learning_rate": "--lr",
               "max_train": "--max-train", "seed": "--seed"}
# Fields that do not change the model a run makes.
_NOT_THE_MODEL = {"kind", "output", "resume", "torch_threads", "save_checkpoints"}


def _norm(field: str, value: Any) -> Any:
    """A config value in a form that compares across machines (paths as cards show them)."""
    if field in ("train", "valid"):
        return shown_paths(value) or None
    if field == "base" and isinstance(value, str):
        return shown_value(value)
    return value


def _recipe_configs(kind: str, names: list[str | None]) -> list[tuple[str | None, dict]]:
    from training.config import TrainConfig

    out = []
    for name in names:
        try:
            out.append((name, TrainConfig.from_file(name, kind=kind).model_dump()))
        except (ValueError, OSError):
            continue
    return out


def _match(cfg: dict[str, Any], names: list[str | None], free: set[str]
           ) -> tuple[str | None, dict[str, Any]] | None:
    """The recipe (``None``: the defaults) that made every field outside ``free`` what
    ``cfg`` says; among several, the one that leaves fewest fields to set by option."""
    best = None
    for name, r in _recipe_configs(cfg["kind"], names):
        if any(_norm(k, v) != _norm(k, r[k]) for k, v in cfg.items()
               if k in r and k not in free | _NOT_THE_MODEL):
            continue
        differ = sum(_norm(k, cfg[k]) != _norm(k, r[k]) for k in free if k in cfg and k in r)
        if best is None or differ < best[0]:
            best = (differ, name, r)
    return None if best is None else (best[1], best[2])


def _q(v: Any) -> str:
    return shlex.quote(str(v))


def _train_flags(cfg: dict[str, Any], recipe: dict[str, Any]) -> list[str] | None:
    """Options that turn ``recipe`` into ``cfg``; None when one cannot be said by option."""
    flags: list[str] = []
    for field, flag in TRAIN_FLAGS.items():
        mine, theirs = _norm(field, cfg.get(field)), _norm(field, recipe.get(field))
        if field not in cfg or mine == theirs:
            continue
        if field == "train" and mine:
            flags += [f"--train {_q(p)}" for p in mine]
        elif field == "valid" and mine and len(mine) == 1:
            flags.append(f"--valid {_q(mine[0])}")
        elif field not in ("train", "valid") and mine is not None:
            flags.append(f"{flag} {_q(mine)}")
        else:
            return None  # a list of valid files, or a None the CLI cannot set
    return flags


def portable_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """The manifest's config as a file ``--config`` takes, its paths as a card shows them."""
    out = {k: v for k, v in cfg.items() if k not in ("resume", "torch_threads")}
    for k in ("train", "valid"):
        if out.get(k):
            shown = shown_paths(out[k])
            out[k] = shown[0] if isinstance(out[k], str) else shown
    if out.get("output"):
        out["output"] = shown_path(out["output"])
    if isinstance(out.get("base"), str):
        out["base"] = shown_value(out["base"])
    return out


def _train_command(cfg: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    from training.config import recipes

    output = f"--output {_q(shown_path(cfg['output']))}" if cfg.get("output") else ""
    m = _match(cfg, [None, *recipes()], set(TRAIN_FLAGS))
    flags = _train_flags(cfg, m[1]) if m else None
    if m is None or flags is None:
        return (f"tickertag train {cfg['kind']} --config config.json {output}".strip(),
                portable_config(cfg))
    recipe = [f"--config {m[0]}"] if m[0] else []
    return " ".join(["tickertag train", cfg["kind"], *recipe, *flags, output]).strip(), None


def _distil_command(cfg: dict[str, Any], distil: dict[str, Any]
                    ) -> tuple[str, dict[str, Any] | None]:
    from training.config import recipes

    default = "student" if cfg["kind"] == "spacy" else None
    names: list[str | None] = [*recipes()] + ([] if default else [None])
    m = _match(cfg, names, {"train", "valid", "output", "epochs", "seed"})
    parts = ["tickertag distil", *(f"--teacher {_q(shown_path(t))}" for t in
                                   distil.get("teachers") or [])]
    if cfg["kind"] != "spacy":
        parts.append(f"--student {cfg['kind']}")
    config = None
    if m is None:
        parts.append("--config config.json")
        config = {k: v for k, v in portable_config(cfg).items()
                  if k not in ("train", "valid", "output")}
    elif m[0] != default:
        parts.append(f"--config {m[0]}")
    if cfg.get("output"):
        parts.append(f"--output {_q(shown_path(cfg['output']))}")
    if m is not None and cfg.get("epochs") != m[1].get("epochs"):
        parts.append(f"--epochs {cfg['epochs']}")
    silver = distil.get("silver")
    if silver is None:
        parts.append("--max-silver 0")
    elif (n := re.search(r"-(\d+)$", Path(silver).stem)) is not None:
        parts.append(f"--max-silver {n.group(1)}")
    if distil.get("drop_contested") is False:
        parts.append("--keep-contested")
    return " ".join(parts), config


def _export_command(manifest: dict[str, Any], model_dir: Path) -> str:
    parts = ["tickertag export-onnx", f"--model {_q(shown_path(manifest['exported_from']))}",
             f"--output {_q(shown_path(model_dir))}"]
    if not manifest.get("quantized"):
        parts.append("--no-quantize")
    elif manifest["quantized"] != "int8-ffn-fp32":
        parts.append(f"--recipe {manifest['quantized']}")
    check = manifest.get("check")
    if not check:
        parts.append("--no-check")
    else:
        if shown_path(check["file"]) != DEFAULT_CHECK:
            parts.append(f"--check {_q(shown_path(check['file']))}")
        if check.get("max_f1_drop", 0.005) != 0.005:
            parts.append(f"--max-f1-drop {check['max_f1_drop']}")
    return " ".join(parts)


def rebuild(manifest: dict[str, Any], model_dir: str | Path
            ) -> tuple[list[str], dict[str, Any] | None]:
    """The commands that rebuild the model, in order, and the ``config.json`` they read (None
    when a shipped recipe and options say it all); ``([], None)`` when the manifest does not
    say how the model was made."""
    kind, cfg = manifest.get("kind"), manifest.get("config")
    out = _q(shown_path(model_dir))
    if kind == "gazetteer":
        train = shown_paths(manifest.get("train"))
        flags = "" if train == [GOLD_TRAIN] else "".join(f" --train {_q(p)}" for p in train)
        thr = manifest.get("threshold", 0.5)
        return [f"tickertag baseline gazetteer --output {out}{flags}"
                + (f" --min-precision {thr}" if thr != 0.5 else "")], None
    if kind == "spacy" and not cfg:
        return [f"tickertag baseline spacy --output {out}"], None
    if not cfg or not cfg.get("kind"):
        return [], None
    if manifest.get("distil"):
        first, config = _distil_command(cfg, manifest["distil"])
    else:
        first, config = _train_command(cfg)
    cmds = [first]
    if kind == "gliner-onnx" and manifest.get("exported_from"):
        cmds.append(_export_command(manifest, Path(model_dir)))
    return cmds, config
