"""When and at which commit a benchmark ran: every results file says both, in one form.

Results are dated and keyed by commit (``2026-12-06, f626b6f``) so a figure can be traced to
the code that produced it; each benchmark used to look the commit up its own way, and some
wrote no date at all.
"""

from __future__ import annotations

import subprocess
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def commit() -> str:
    """The short hash of HEAD, or ``unknown`` outside a git checkout."""
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True, cwd=ROOT)
    return out.stdout.strip() or "unknown"


def today() -> str:
    return date.today().isoformat()


def recorded_line() -> str:
    """The results file's first line under its title."""
    return f"Recorded on {today()} at {commit()}."
