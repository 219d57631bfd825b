"""The conventions every ``tickertag`` command follows, written once:

- ``--json`` (:data:`JsonOpt`): a command that reports prints one JSON object, the last line of
  stdout, instead of tables and prose (:func:`emit_json`); its progress bars are off then.
- A runtime failure (a missing file, a refused model directory, Redis out of reach) exits 1
  with a one-line reason on stderr (:func:`fail`; :func:`one_line_errors`, applied to every
  command by ``tickertag.cli``, does it for the errors a command does not catch itself).
  Usage errors stay Typer's exit 2.
- An option that overrides a field of ``common.settings.Settings`` names the ``TICKERTAG_*``
  variable behind it (``envvar=``), so ``--help`` shows ``[env var: ...]`` (:data:`RunOpt`).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import click
import typer
from rich.console import Console
from rich.markup import escape

log = logging.getLogger("tickertag.cli")
# Failures go to stderr, unwrapped: one line whatever the terminal width.
err_console = Console(stderr=True, soft_wrap=True, highlight=False)
F = TypeVar("F", bound=Callable[..., Any])

JsonOpt = Annotated[bool, typer.Option(
    "--json", help="Print one JSON object (the last line of stdout) instead of tables.")]
RunOpt = Annotated[str | None, typer.Option("--run", "-r", envvar="TICKERTAG_RUN_ID",
                                            help="Run id (default: settings.run_id).")]


def emit_json(obj: Any) -> None:
    """The command's outcome as one line of JSON on stdout (paths, dates: as strings)."""
    print(json.dumps(obj, default=str, ensure_ascii=False), flush=True)


def one_line(e: BaseException | str) -> str:
    """An error message folded onto one line (pydantic and others write several)."""
    return " ".join(str(e).split()) or type(e).__name__


def fail(where: str, e: BaseException | str) -> typer.Exit:
    """Print ``where: reason`` on one line of stderr; return the exit-1 to raise."""
    err_console.print(f"[red]{escape(where)}:[/] {escape(one_line(e))}")
    return typer.Exit(1)


def _runtime_errors() -> tuple[type[BaseException], ...]:
    """What counts as a runtime failure (not a bug): I/O, bad input data, refused states, and
    the broker's and Redis's connection errors. KeyError, TypeError... keep their traceback."""
    import redis
    from kombu.exceptions import KombuError

    return OSError, ValueError, RuntimeError, redis.RedisError, KombuError


# Typer's exits and usage errors (its own vendored click's, and click's): never reported as
# failures here (typer.Exit and typer.Abort are RuntimeErrors).
_PASS_THROUGH = (typer.Exit, typer.Abort, typer.TyperException, click.exceptions.Exit,
                 click.exceptions.Abort, click.ClickException)


def one_line_errors(func: F, where: str = "tickertag") -> F:
    """Wrap a command so that a runtime failure it lets through exits 1 with ``where: reason``
    on one line (the traceback is logged at DEBUG) instead of a traceback. Idempotent."""
    if getattr(func, "_tt_one_line_errors", False):
        return func

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except _PASS_THROUGH:
            raise
        except Exception as e:
            if not isinstance(e, _runtime_errors()):
                raise
            log.debug("%s failed", where, exc_info=True)
            raise fail(where, e) from e

    wrapper._tt_one_line_errors = True  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def apply_conventions(app: typer.Typer, path: str = "") -> None:
    """Wrap every command of ``app`` and of its sub-apps with :func:`one_line_errors`, each
    failure named by its command (``review push: ...``, as the commands' own messages)."""
    for cmd in app.registered_commands:
        if cmd.callback is not None:
            name = _name(cmd.name) or cmd.callback.__name__.lower().replace("_", "-")  # Typer
            cmd.callback = one_line_errors(cmd.callback, f"{path} {name}".strip())
    for group in app.registered_groups:
        sub = group.typer_instance
        if sub is not None:
            apply_conventions(sub, f"{path} {_name(group.name) or _name(sub.info.name)}".strip())


def _name(v: Any) -> str | None:
    """A name given to Typer, or ``None`` (Typer keeps an unset one as a DefaultPlaceholder)."""
    return v if isinstance(v, str) else getattr(v, "value", None)
