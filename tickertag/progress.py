"""One progress display for commands that report several named steps (demo, distil).

Why: each step (annotate, tag, train) reports ``(what, done, total)``; the first report of a
step adds its bar. Written once, so every multi-step command shows progress the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

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
