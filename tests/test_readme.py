"""Every `tickertag ...` command in the README's fenced blocks names a real command and real
options: a README a user copies from must not drift from the CLI."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import typer.main

ROOT = Path(__file__).resolve().parent.parent


def _cli() -> Any:
    from tickertag.cli import _register_all, app

    if not app.registered_commands:
        _register_all()
    return typer.main.get_command(app)  # typer's own (vendored) click group


def readme_commands(text: str) -> list[list[str]]:
    """argv lists of the `tickertag` lines inside ```bash blocks (comments and line
    continuations handled)."""
    out = []
    for block in re.findall(r"```(?:bash|sh)?\n(.*?)```", text, re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split(" #", 1)[0].strip()
            if line.startswith("tickertag ") or line.startswith(".venv/bin/tickertag "):
                out.append(shlex.split(line)[1:])
    return out


def _resolve(group: Any, argv: list[str]) -> tuple[Any, list[str]]:
    cmd = group
    args = list(argv)
    while hasattr(cmd, "commands") and args and not args[0].startswith("-"):
        sub = cmd.commands.get(args[0])
        assert sub is not None, f"no command {args[0]!r} in `tickertag {' '.join(argv)}`"
        cmd, args = sub, args[1:]
    return cmd, args


def test_every_readme_command_exists_with_its_options():
    cmds = readme_commands((ROOT / "README.md").read_text())
    assert len(cmds) >= 15  # the README shows the CLI; an empty scan would prove nothing
    group = _cli()
    for argv in cmds:
        cmd, rest = _resolve(group, argv)
        names = {o for p in cmd.params for o in getattr(p, "opts", []) + getattr(
            p, "secondary_opts", [])}
        for tok in rest:
            if tok.startswith("--"):
                flag = tok.split("=", 1)[0]
                assert flag in names, f"`tickertag {' '.join(argv)}`: no option {flag}"


def test_the_scan_catches_a_wrong_flag():
    cmds = readme_commands("```bash\ntickertag predict --modle m --input a --output b\n```")
    group = _cli()
    cmd, rest = _resolve(group, cmds[0])
    names = {o for p in cmd.params for o in getattr(p, "opts", [])}
    assert "--modle" not in names and "--model" in names
