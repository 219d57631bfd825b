"""The model directory's manifest (``tickertag.json``) and the paths it may name.

A leaf module (no imports from the rest of ``training``), so every trainer, loader and the CLI
can use it without an import cycle.

Why the path check: a model directory is data a user may have downloaded. Its manifest names
files (an ONNX graph, a spaCy pipeline) that the loaders open; a manifest that says
``"../../somewhere"`` or an absolute path must not make a loader open something outside the
directory. Nothing is loaded with ``trust_remote_code``: no loader runs code shipped in a model
directory.
"""

from __future__ import annotations

import re
from pathlib import Path

MANIFEST = "tickertag.json"
_PACKAGE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")  # an installed pipeline's import name


class UnsafeModelDir(ValueError):
    """A manifest names a path outside its model directory."""


def path_inside(model_dir: str | Path, rel: str, field: str) -> Path:
    """``model_dir / rel``, refused unless it stays inside ``model_dir`` (links resolved)."""
    base = Path(model_dir).resolve()
    p = (base / rel).resolve()
    if Path(rel).is_absolute() or not p.is_relative_to(base):
        raise UnsafeModelDir(f"{model_dir}: manifest field {field!r} = {rel!r} points outside "
                             "the model directory")
    return p


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
