"""Tables that fit the terminal: a table too wide for it is printed as several, each repeating
the key column, instead of letting rich squeeze every column until words are cut in pieces
("environm-ent") or end in an ellipsis.

Why: the report's systems table has ten columns and review's progress eight; in 80 columns
rich cut both headers and values mid-word. Splitting by columns keeps every cell whole and
every row readable (its key is on each part).
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

# What a column costs beyond its text: one space each side and the border to its right.
_COLUMN_EXTRA = 3


def column_groups(header: Sequence[str], rows: Sequence[Sequence[str]], width: int,
                  keys: int = 1) -> list[list[int]]:
    """Column indices per table: the first ``keys`` columns in every group, the others in
    order, as many per group as fit ``width`` at their natural width (header or widest cell).
    A column too wide for any group gets a group of its own (rich wraps it at spaces)."""
    natural = [max([len(header[i]), *(len(r[i]) for r in rows)]) + _COLUMN_EXTRA
               for i in range(len(header))]
    base = sum(natural[:keys]) + 1  # + the table's left border
    groups: list[list[int]] = []
    current: list[int] = []
    used = base
    for i in range(keys, len(header)):
        if current and used + natural[i] > width:
            groups.append(current)
            current, used = [], base
        current.append(i)
        used += natural[i]
    if current or not groups:
        groups.append(current)
    return [[*range(keys), *g] for g in groups]


def fitted_tables(header: Sequence[str], rows: Sequence[Sequence[str]], width: int,
                  title: str | None = None, right: set[int] | frozenset[int] = frozenset(),
                  keys: int = 1) -> list[Table]:
    """The table as one or more rich tables no wider than ``width`` (see :func:`column_groups`);
    the title goes on the first, ``right`` names the right-aligned columns."""
    out = []
    for n, group in enumerate(column_groups(header, rows, width, keys)):
        t = Table(title=title if n == 0 else None)
        for i in group:
            t.add_column(header[i], justify="right" if i in right else "left")
        for r in rows:
            t.add_row(*(r[i] for i in group))
        out.append(t)
    return out


def print_fitted(console: Console, header: Sequence[str], rows: Sequence[Sequence[str]],
                 title: str | None = None, right: set[int] | frozenset[int] = frozenset(),
                 keys: int = 1) -> None:
    """Print :func:`fitted_tables` at the console's width."""
    for t in fitted_tables(header, rows, console.width, title, right, keys):
        console.print(t)
