"""The model directory's manifest (``tickertag.json``) and the paths it may name.

A leaf module (no imports from the rest of ``training``), so every trainer, loader and the CLI
can use it without an import cycle.

Why the path check: a model directory is data a user may have downloaded. Its manifest names
files (an ONNX graph, a spaCy pipeline) that the loaders open; a manifest that says
``"../../somewhere"`` or an absolute path must not make a loader open something outside the
directory. Links count as what they resolve to: a ``pipeline/`` (or any file) that is a
symlink to elsewhere is refused like a manifest path that says so, since checking the names
alone let a linked-in pipeline load from anywhere. Nothing is loaded with ``trust_remote_code``:
no loader runs code shipped in a model directory.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

MANIFEST = "tickertag.json"
_PACKAGE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")  # an installed pipeline's import name


class UnsafeModelDir(ValueError):
    """A model directory names, or links to, a path outside itself."""


# Manifest fields a loader opens as a file of the model directory, whatever the model's kind.
FILE_FIELDS = ("onnx_file",)


def resolve_inside(model_dir: str | Path, path: str | Path, what: str) -> Path:
    """``path`` with every link resolved (a relative one from the working directory, as the
    libraries that open it would), refused unless it lies inside ``model_dir``."""
    base = Path(model_dir).resolve()
    try:
        real = Path(path).expanduser().resolve()
    except (OSError, RuntimeError) as e:  # a link loop
        raise UnsafeModelDir(f"{what} {path} cannot be resolved (a link loop?) in the model "
                             f"directory {model_dir}: {e}") from e
    if not real.is_relative_to(base):
        raise UnsafeModelDir(f"{what} {path} resolves to {real}, outside the model directory "
                             f"{model_dir}; a model directory must hold every file it loads")
    return real


def path_inside(model_dir: str | Path, rel: str, field: str) -> Path:
    """``model_dir / rel``, refused unless it stays inside ``model_dir`` (links resolved)."""
    what = f"manifest field {field!r} = {rel!r}:"
    if Path(rel).is_absolute():
        raise UnsafeModelDir(f"{what} an absolute path, outside the model directory "
                             f"{model_dir}; name a file inside it")
    return resolve_inside(model_dir, Path(model_dir) / rel, what)


def refuse_links_outside(model_dir: str | Path, top: str | Path | None = None) -> None:
    """Refuse a link anywhere under ``top`` (default: the whole model directory) that resolves
    outside ``model_dir``: the loaders open files by their names in the directory, and a
    name that is a link opens its target."""
    start = Path(top or model_dir)
    if not start.is_dir():
        return  # a hub id: nothing local to check
    for root, dirs, files in os.walk(start):  # links to directories are listed, not entered
        for name in (*dirs, *files):
            entry = Path(root) / name
            if entry.is_symlink():
                resolve_inside(model_dir, entry, "the link")


def check_manifest_paths(model_dir: str | Path, manifest: dict[str, Any]) -> None:
    """Every path the manifest names must resolve inside the model directory.

    ``model`` is a spaCy pipeline: a directory of the model, or the name of an installed
    package (which is no path); a name that also exists in the directory is the directory."""
    for field in FILE_FIELDS:
        if field in manifest:
            path_inside(model_dir, str(manifest[field]), field)
    model = manifest.get("model")
    if isinstance(model, str) and (not is_package_name(model)
                                   or os.path.lexists(Path(model_dir) / model)):
        path_inside(model_dir, model, "model")


def is_package_name(name: str) -> bool:
    return bool(_PACKAGE.match(name))


def refuse_remote_code(model_dir: str | Path) -> None:
    """Refuse a directory that could make transformers import code from it.

    GLiNER builds its encoder with ``trust_remote_code=True`` (gliner 0.2.x, not configurable),
    so a config carrying ``auto_map`` would import a module named by the directory. tickertag's
    own models never have one; a directory that does is refused before anything loads it."""
    import json

    d = Path(model_dir)
    if not d.is_dir():
        return  # a hub id: the Hub's own trust rules apply
    for cfg in [*d.glob("*config.json"), *d.glob("*/config.json")]:
        try:
            text = cfg.read_text(errors="replace")
            data = json.loads(text)
        except (OSError, ValueError):
            continue
        if "auto_map" in text and _has_key(data, "auto_map"):
            raise UnsafeModelDir(f"{cfg}: 'auto_map' asks to run code shipped with the model; "
                                 "tickertag never loads remote code")
    py = sorted(p.name for p in d.rglob("*.py"))
    if py:
        raise UnsafeModelDir(f"{d}: contains Python files ({', '.join(py[:3])}); a model "
                             "directory is data, and tickertag never runs code from one")


def _has_key(obj: object, key: str) -> bool:
    if isinstance(obj, dict):
        return key in obj or any(_has_key(v, key) for v in obj.values())
    if isinstance(obj, list):
        return any(_has_key(v, key) for v in obj)
    return False
