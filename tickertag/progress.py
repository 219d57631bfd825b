"""One progress display for commands that report several named steps (demo, distil).

Why: each step (annotate, tag, train) reports ``(what, done, total)``; the first report of a
step adds its bar. Written once, so every multi-step command shows progress the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from common.progress import Tick


class _WaitSpinner(SpinnerColumn):
    """A spinner beside a step whose length is unknown (a model loading), blank beside a
    counted one: a bar that cannot move still shows the command is alive."""

    def render(self, task: Task) -> Text:
        if task.total is None and not task.finished:
            return super().render(task)  # type: ignore[return-value]
        return Text(" ")


@contextmanager
def step_bars(console: Console, disable: bool = False) -> Iterator[tuple[Progress, Tick]]:
    """A live display and its ``tick(what, done, total)`` (``total=None``: still counting)."""
    with Progress(_WaitSpinner(), TextColumn("[bold]{task.description}"), BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                  disable=disable) as prog:
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


class TrainBars:
    """The progress sink ``train`` hands the trainer (``training.selection.Progress``): one bar
    per epoch with its steps and time left, which shows the epoch's valid F1 once it is
    scored. It takes the epoch records every sink gets and, through ``step``, each step."""

    def __init__(self, prog: Progress) -> None:
        self.prog = prog
        self.bars: dict[int, Any] = {}

    @staticmethod
    def columns() -> tuple[Any, ...]:
        return (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("steps"), TimeRemainingColumn(compact=True),
                TextColumn("{task.fields[f1]}"))

    def step(self, epoch: int, epochs: int, done: int, total: int) -> None:
        if epoch not in self.bars:
            self.bars[epoch] = self.prog.add_task(f"epoch {epoch}/{epochs}", total=total, f1="")
        self.prog.update(self.bars[epoch], completed=done, total=total)

    def __call__(self, rec: dict[str, Any]) -> None:
        if rec.get("status") != "training" or rec.get("epoch") not in self.bars:
            return
        # the custom loop scores valid with the project's F1; spaCy's loop with its ents_f
        name, f1 = (("valid F1", rec["valid_f1"]) if rec.get("valid_f1") is not None
                    else ("dev ents_f", rec.get("dev_ents_f")))
        bar = self.bars[rec["epoch"]]
        self.prog.update(bar, f1="" if f1 is None else f"{name} {f1:.4f}"
                         + (" (best so far)" if rec.get("saved") else ""))
        task = next(t for t in self.prog.tasks if t.id == bar)
        if task.total is not None:
            self.prog.update(bar, completed=task.total)


@contextmanager
def train_bars(console: Console, disable: bool = False) -> Iterator[TrainBars]:
    """A live display of :class:`TrainBars` (nothing with ``disable``: ``--json``)."""
    with Progress(*TrainBars.columns(), console=console, disable=disable) as prog:
        yield TrainBars(prog)
