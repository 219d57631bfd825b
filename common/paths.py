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


def home() -> Path:
    """The root for outputs: ``TICKERTAG_HOME``, else the current directory (absolute, so worker
    processes started elsewhere write to the same place)."""
    return Path(os.environ.get("TICKERTAG_HOME") or os.getcwd()).resolve()


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
