"""Where tickertag reads what it ships and writes what it makes: one place for both.

Why two roots: the bundled data (sample, labelled files, pool) and the recipe files are read-only
and travel with the code: in a source checkout they are ``data/`` and ``training/configs/`` next
to the packages; in an installed wheel they are package data (``tickertag/bundled`` and
``training/configs`` inside site-packages). Outputs (runs, models, logs) are the user's: they go
under ``TICKERTAG_HOME`` when it is set, else under the current directory, never next to the code,
since site-packages may be read-only and is shared by every user of the environment.
"""

from __future__ import annotations

import os
from pathlib import Path

# The directory that holds the packages (common/, training/, ...): the checkout, or site-packages.
CODE_ROOT = Path(__file__).resolve().parent.parent


def _data_dir() -> Path:
    checkout = CODE_ROOT / "data"
    if (checkout / "labeled").is_dir():
        return checkout
    return CODE_ROOT / "tickertag" / "bundled"  # pyproject maps data/ there in a wheel


DATA_DIR = _data_dir()
SAMPLE_CSV = DATA_DIR / "sample" / "benzinga_sample.csv"
LABELED_DIR = DATA_DIR / "labeled"
POOL_CSV = DATA_DIR / "pool" / "benzinga_headlines.csv"
CONFIGS_DIR = CODE_ROOT / "training" / "configs"


# How the recipes, the README and the job messages name the shipped files: the paths they have
# in a checkout. In a wheel the same files are elsewhere (DATA_DIR, CONFIGS_DIR say where).
SHIPPED_PREFIXES: dict[str, Path] = {"data/": DATA_DIR, "training/configs/": CONFIGS_DIR}


def local_or_shipped(path: str) -> str:
    """A relative input path as the user meant it: read from the current directory when it is
    there (a file of one's own wins), else, when it starts with ``data/`` or
    ``training/configs/``, the shipped file of that name (``data/labeled/x.jsonl`` ->
    ``DATA_DIR/labeled/x.jsonl``), so a recipe or a README command works from any directory and
    from an installed wheel. Absolute paths, and paths found in neither place, come back
    unchanged."""
    if Path(path).is_absolute() or Path(path).exists():
        return path
    posix = Path(path).as_posix()
    for prefix, root in SHIPPED_PREFIXES.items():
        shipped = root / posix.removeprefix(prefix)
        if posix.startswith(prefix) and shipped.exists():
            return str(shipped)
    return path  # found nowhere: the error names the path as given


def home() -> Path:
    """The root for outputs: ``TICKERTAG_HOME``, else the current directory (absolute, so worker
    processes started elsewhere write to the same place)."""
    return Path(os.environ.get("TICKERTAG_HOME") or os.getcwd()).resolve()


def under_home(path: str) -> str:
    """Where a relative output path goes: under ``home()``. Written as given when ``home()`` is
    the current directory (the same place, and a saved config keeps the user's words), joined to
    ``TICKERTAG_HOME`` otherwise, so an output never lands in whatever directory one ran from."""
    p = Path(path)
    if p.is_absolute() or home() == Path.cwd().resolve():
        return path
    return str(home() / p)


# Paths that cross hosts (a job sent to the train queue, a model named to the ner workers) travel
# in a form every host can resolve: relative to the sender's home (the shared volume in a compose
# deployment, where each container's TICKERTAG_HOME or working directory is that volume), or
# ``@data/...`` for the bundled data, which every install carries. A client's absolute path meant
# nothing inside a container.
DATA_TOKEN = "@data/"


def to_shared(path: str | Path) -> str:
    """The sender's path as every host can read it; paths outside both roots stay absolute
    (they work only where that path is mounted, as before)."""
    p = Path(path).resolve()
    for root, prefix in ((DATA_DIR.resolve(), DATA_TOKEN), (home(), "")):
        if p.is_relative_to(root):
            return prefix + p.relative_to(root).as_posix()
    return str(p)


def from_shared(path: str) -> str:
    """The receiving host's absolute path for what ``to_shared`` wrote."""
    if path.startswith(DATA_TOKEN):
        return str(DATA_DIR / path.removeprefix(DATA_TOKEN))
    return str(home() / path)  # an absolute path stays itself: home() / "/x" is "/x"
