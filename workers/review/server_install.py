"""The Argilla server's own virtual environment: where it goes, how it is built, where
``tickertag review serve`` finds it.

Why a venv of its own: argilla-server 2.8.0 needs huggingface_hub>=1 while tickertag is pinned
below 1 (transformers<5, span-marker); the two cannot share site-packages. Why the pins:
argilla-server's CLI crashes on click>=8.2; osmem-server is the in-memory OpenSearch emulator
that stands in for Elasticsearch/OpenSearch, which cannot be installed here.

Where: ``TICKERTAG_HOME/.venv-argilla`` (the current directory without ``TICKERTAG_HOME``),
since an installed wheel's code directory is site-packages, read-only and shared; a source
checkout's own ``.venv-argilla`` (what ``make install`` builds) is found after it.

Standard library only, so ``scripts/install_argilla.sh`` can run it with any Python 3.11
(``python -m workers.review.server_install``) and the launcher next to it can run inside the
Argilla venv, where tickertag is not installed.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from common.paths import CODE_ROOT, home

REQUIREMENTS = ("argilla-server==2.8.0", "click<8.2", "osmem-server==0.1.6")
# What the launcher imports: checked at install time rather than at the first `review serve`.
IMPORT_CHECK = "import argilla_server, osmem_server, uvicorn"
VENV_NAME = ".venv-argilla"
STAMP = ".installed"  # records the requirement line; when it matches, nothing is done
LAUNCHER = Path(__file__).with_name("argilla_launcher.py")
INSTALL_VERB = "tickertag review install-server"


class ServerVenvMissing(FileNotFoundError):
    """No Argilla venv where one was looked for; the message names the verb that builds one."""


class InstallFailed(RuntimeError):
    """A step of the install exited non-zero; the message carries the end of its output."""


@dataclass(frozen=True)
class Step:
    what: str
    argv: list[str]


def default_venv() -> Path:
    """Where ``install-server`` builds the venv when no directory is named."""
    return home() / VENV_NAME


def candidates(configured: Path | None = None) -> list[Path]:
    """Where ``review serve`` looks, in order: the configured directory alone when there is one
    (``TICKERTAG_ARGILLA_VENV``), else ``TICKERTAG_HOME``'s, then the checkout's (development)."""
    if configured is not None:
        return [Path(configured)]
    out: list[Path] = []
    for p in (default_venv(), CODE_ROOT / VENV_NAME):
        if p not in out:
            out.append(p)
    return out


def _python(venv: Path) -> Path:
    return venv / "bin" / "python"


def find_venv(configured: Path | None = None) -> Path:
    """The first of :func:`candidates` that holds a Python; :class:`ServerVenvMissing` names
    the places looked at and the command that builds one."""
    looked = candidates(configured)
    for venv in looked:
        if _python(venv).exists():
            return venv
    where = " or ".join(str(p) for p in looked)
    hint = f"{INSTALL_VERB} --venv {looked[0]}" if configured is not None else INSTALL_VERB
    raise ServerVenvMissing(f"no Argilla server venv at {where}: build one with `{hint}`")


def up_to_date(venv: Path) -> bool:
    stamp = venv / STAMP
    return (_python(venv).exists() and stamp.is_file()
            and stamp.read_text(encoding="utf-8").strip() == " ".join(REQUIREMENTS))


def plan(venv: Path, python: str | None = None) -> list[Step]:
    """The commands an install runs, in order (a venv that exists is reused, not recreated)."""
    vpy = str(_python(venv))
    steps = []
    if not _python(venv).exists():
        steps.append(Step("create the venv", [python or sys.executable, "-m", "venv", str(venv)]))
    steps += [
        Step("upgrade pip", [vpy, "-m", "pip", "install", "-q", "--upgrade", "pip"]),
        Step("install argilla-server and the search emulator",
             [vpy, "-m", "pip", "install", "-q", *REQUIREMENTS]),
        Step("check the launcher's imports", [vpy, "-c", IMPORT_CHECK]),
    ]
    return steps


def describe(venv: Path, python: str | None = None) -> list[str]:
    """The plan as lines for ``--dry-run``: the target, each command, and whether it is needed."""
    lines = [f"target: {venv}"]
    if up_to_date(venv):
        lines.append("up to date (the stamp matches): an install would run nothing; "
                     "--force runs these:")
    lines += [f"{i}. {s.what}: {shlex.join(s.argv)}"
              for i, s in enumerate(plan(venv, python), start=1)]
    lines.append(f"then: write {venv / STAMP}")
    return lines


def install(venv: Path, python: str | None = None, force: bool = False,
            say: Callable[[str], None] = print,
            running: Callable[[Step], AbstractContextManager[object]] | None = None) -> bool:
    """Build or update the venv; ``False`` when it was already up to date (nothing ran).

    ``say`` gets one line per step before it runs; ``running(step)``, when given, is a context
    manager around each step (the CLI's spinner). A failing step raises :class:`InstallFailed`
    with the end of its output; the stamp is written only after every step passed."""
    import contextlib

    if up_to_date(venv) and not force:
        say(f"Argilla server venv up to date: {venv}")
        return False
    steps = plan(venv, python)
    for i, step in enumerate(steps, start=1):
        say(f"[{i}/{len(steps)}] {step.what}: {shlex.join(step.argv)}")
        with running(step) if running else contextlib.nullcontext():
            done = subprocess.run(step.argv, capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stdout + done.stderr).strip()[-2000:]
            raise InstallFailed(f"{step.what} failed (exit {done.returncode}): {tail}")
    (venv / STAMP).write_text(" ".join(REQUIREMENTS) + "\n", encoding="utf-8")
    say(f"Argilla server venv ready: {venv}")
    return True


def main(argv: list[str] | None = None) -> int:
    """``python -m workers.review.server_install [VENV]``: what ``scripts/install_argilla.sh``
    runs (``make install``, the tests' Argilla fixture)."""
    p = argparse.ArgumentParser(description="Build the Argilla server's own venv.")
    p.add_argument("venv", nargs="?", type=Path, default=None,
                   help=f"target directory (default: TICKERTAG_HOME/{VENV_NAME})")
    p.add_argument("--python", default=None, help="interpreter that creates the venv")
    p.add_argument("--dry-run", action="store_true", help="print the plan, install nothing")
    p.add_argument("--force", action="store_true", help="run every step even when up to date")
    a = p.parse_args(argv)
    venv = (a.venv or default_venv()).absolute()
    if a.dry_run:
        print("\n".join(describe(venv, a.python)))
        return 0
    try:
        install(venv, a.python, a.force)
    except InstallFailed as e:
        print(f"install-server: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
