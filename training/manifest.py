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

Why a fingerprint: a model directory is retrained, overwritten or moved, so its path says
nothing about which weights it holds. ``write_manifest`` (the one writer of ``tickertag.json``:
train, distil, export-onnx, baseline) stores ``"fingerprint"``, a hash of the rest of the
manifest and of every weight file's bytes, so the teachers' runs, the ``ner`` results and a
long-lived worker's loaded models are keyed by what the model is. A directory written before
fingerprints existed (or saved by another tool) gets one computed on demand by
``model_fingerprint``; each file's digest is cached by (path, inode, size, mtime), so asking
again costs a few ``stat`` calls.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

MANIFEST = "tickertag.json"
FINGERPRINT = "fingerprint"  # the manifest field that holds it
# Files of a model directory that are no part of the model: the manifest (hashed as its JSON
# instead), the model card written from it (training/card.py), a training run's resume state
# and checkpoints (training/selection.py); a leaf module, so the names are repeated here.
_NOT_MODEL_FILES = frozenset({MANIFEST, "README.md", "train_state.json"})
_NOT_MODEL_DIRS = frozenset({"checkpoints"})
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


# --- writing the manifest, and the fingerprint ------------------------------------------------

def write_manifest(model_dir: str | Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Write ``manifest`` to ``model_dir`` with the fingerprint of the directory as it is now
    (weights first, manifest last); return the manifest as written.

    The weights are read afresh (no cache: a retrain may rewrite a file with the same size in
    the same clock tick), and the file is replaced whole, so a worker reading it meanwhile sees
    the old manifest or the new one, never half of one."""
    d = Path(model_dir)
    body = {k: v for k, v in manifest.items() if k != FINGERPRINT}
    written = {**body, FINGERPRINT: compute_fingerprint(d, body, cached=False)}
    tmp = d / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(written, indent=2))
    os.replace(tmp, d / MANIFEST)
    return written


def model_fingerprint(model_dir: str | Path) -> str:
    """The fingerprint of the model in ``model_dir``: the manifest's, else computed (a
    directory written before fingerprints, a GLiNER saved by another tool). A name that is no
    directory (a Hub id) is known by its name."""
    d = Path(model_dir)
    if not d.is_dir():
        return _hex(hashlib.sha256(f"name\0{model_dir}".encode()))
    path = d / MANIFEST
    manifest = json.loads(path.read_text()) if path.is_file() else {}
    stored = manifest.get(FINGERPRINT)
    return stored if isinstance(stored, str) and stored else compute_fingerprint(d, manifest)


def compute_fingerprint(model_dir: str | Path, manifest: dict[str, Any],
                        cached: bool = True) -> str:
    """SHA-256 (first 16 hex digits) of the manifest without its fingerprint (canonical JSON),
    each model file's path and digest, and the version of an installed pipeline the manifest
    names; the same content gives the same fingerprint wherever the directory lies."""
    d = Path(model_dir)
    h = hashlib.sha256()
    body = {k: v for k, v in manifest.items() if k != FINGERPRINT}
    h.update(json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode())
    for rel, path in _model_files(d):
        h.update(f"\0{rel}\0{file_digest(path, cached)}".encode())
    package = _installed_pipeline(d, body)
    if package:
        h.update(f"\0package\0{package}".encode())
    return _hex(h)


def _hex(h: Any) -> str:
    return str(h.hexdigest())[:16]


def _model_files(d: Path) -> list[tuple[str, Path]]:
    """(path relative to ``d``, path) of every file that makes the model, sorted."""
    out = []
    for root, dirs, files in os.walk(d):  # links to directories are listed, not entered
        dirs[:] = [n for n in dirs if n not in _NOT_MODEL_DIRS and not n.startswith(".")]
        for name in files:
            if name.startswith(".") or (root == str(d) and name in _NOT_MODEL_FILES):
                continue
            path = Path(root) / name
            out.append((path.relative_to(d).as_posix(), path))
    return sorted(out)


def _installed_pipeline(d: Path, manifest: dict[str, Any]) -> str | None:
    """``name==version`` of the installed package a manifest's ``model`` names (the spaCy
    baseline), which holds the weights outside the directory."""
    model = manifest.get("model")
    if not isinstance(model, str) or not is_package_name(model) or os.path.lexists(d / model):
        return None
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{model}=={version(model)}"
    except PackageNotFoundError:
        return model


# (resolved path, inode, size, mtime in ns) -> SHA-256 of the file's bytes
_DIGESTS: dict[tuple[str, int, int, int], str] = {}
_MAX_DIGESTS = 10_000


def file_digest(path: str | Path, cached: bool = True) -> str:
    """SHA-256 of a file, read in chunks (a GLiNER's weights are ~1 GB); remembered by the
    file's (path, inode, size, mtime) so that a directory asked about again is not re-read."""
    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), st.st_ino, st.st_size, st.st_mtime_ns)
    if cached and key in _DIGESTS:
        return _DIGESTS[key]
    with open(p, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    if len(_DIGESTS) >= _MAX_DIGESTS:
        _DIGESTS.clear()
    _DIGESTS[key] = digest
    return digest
