"""One progress display for commands that report several named steps (demo, distil).

Why: each step (annotate, tag, train) reports ``(what, done, total)``; the first report of a
step adds its bar. Written once, so every multi-step command shows progress the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from common.progress import Tick


@contextmanager
def step_bars(console: Console, disable: bool = False) -> Iterator[tuple[Progress, Tick]]:
    """A live display and its ``tick(what, done, total)`` (``total=None``: still counting)."""
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, disable=disable) as prog:
        bars: dict[str, int] = {}

        def tick(what: str, done: int, total: int | None) -> None:
            if what not in bars:
                bars[what] = prog.add_task(what, total=total)
            prog.update(bars[what], completed=done, total=total)

        yield prog, tick


T = TypeVar("T")


def run_steps(console: Console, as_json: bool, what: str,
              call: Callable[[Callable[[str], Any], Tick], T]) -> T:
    """Run a multi-step command's work with its bars and messages (none under ``--json``);
    its expected failures (bad input, a missing file, a step that could not finish) end the
    command in one line, as every verb does (``cli_common.fail``)."""
    from tickertag.cli_common import fail

    with step_bars(console, disable=as_json) as (_prog, tick):
        try:
            return call((lambda m: None) if as_json else console.print, tick)
        except (ValueError, FileNotFoundError, RuntimeError) as e:
            raise fail(what, e) from e
