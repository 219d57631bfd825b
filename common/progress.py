"""The one shape of progress every long step reports: ``tick(what, done, total)``.

Why one home: the CLI draws bars from it (``tickertag.progress.step_bars``), while the work runs
in ``training/``, ``workers/`` and ``producer/``, none of which may import the CLI; each of them
had written the same callable type again. ``total=None`` means the total is still unknown.
"""

from __future__ import annotations

from collections.abc import Callable

Tick = Callable[[str, int, int | None], None]


def no_tick(what: str, done: int, total: int | None) -> None:
    """The tick of a caller that draws nothing (Celery tasks, tests)."""
