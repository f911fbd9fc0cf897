"""Consoles, tables, progress bars and JSON documents: what every renderer prints with."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from fulcrum_sync.jsonable import jsonable


def stdout_console() -> Console:
    """A console on stdout: plain and 200 columns wide when not a terminal (pipes and logs read
    well), unless ``COLUMNS`` sets the width."""
    console = Console(highlight=False)
    if not console.is_terminal and not os.environ.get("COLUMNS", "").isdigit():
        console = Console(highlight=False, width=200)
    return console


def stderr_console() -> Console:
    return Console(stderr=True, soft_wrap=True, highlight=False)


def print_json(value: Any) -> None:
    """Print ``value`` as one JSON document on stdout."""
    sys.stdout.write(json.dumps(jsonable(value), indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()


def print_table(
    console: Console,
    title: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    caption: str | None = None,
) -> None:
    """Print a rich table; ``None`` cells show as an empty cell."""

    table = Table(title=title, caption=caption, show_lines=False, title_justify="left")
    for name in columns:
        numeric = name.lower().startswith(("rows", "count", "n ", "duration", "size"))
        table.add_column(name, justify="right" if numeric else "left", overflow="fold")
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    console.print(table)


@dataclass(frozen=True, slots=True)
class Column:
    """A column of :func:`print_fitted`: its header, alignment and how it gives way.

    :param drop: 0 keeps the column whatever the width; otherwise the highest ``drop`` goes
        first when the table is wider than the terminal.
    :param fold: the column may wrap onto more lines (an error text) instead of widening.
    """

    name: str
    justify: Literal["left", "right"] = "left"
    drop: int = 0
    fold: bool = False


def print_fitted(
    console: Console,
    title: str | None,
    columns: Sequence[Column],
    rows: Sequence[Sequence[Any]],
    *,
    caption: str | None = None,
) -> list[str]:
    """Print a compact table with one line per row, dropping columns that do not fit.

    Columns are dropped highest ``drop`` first until the table fits the console's width; a
    ``fold`` column wraps instead. Cells may hold rich markup. Return the dropped headers
    (the caller says where the full detail is, e.g. ``--json``).
    """
    kept = list(range(len(columns)))
    # A folding column counts with its header or _FOLD_WIDTH characters, whichever is wider.
    short = [
        [_fold_cell(cell) if columns[i].fold else cell for i, cell in enumerate(row)]
        for row in rows
    ]
    wide = console.options.update_width(10_000)
    while True:
        trial = _compact_table(None, [columns[i] for i in kept], short, kept, None)
        droppable = [i for i in kept if columns[i].drop]
        if Measurement.get(console, wide, trial).maximum <= console.width or not droppable:
            break
        kept.remove(max(droppable, key=lambda i: (columns[i].drop, i)))
    console.print(_compact_table(title, [columns[i] for i in kept], rows, kept, caption))
    return [c.name for i, c in enumerate(columns) if i not in kept]


_FOLD_WIDTH = 16


def _fold_cell(cell: Any) -> Text:
    text = cell if isinstance(cell, Text) else Text.from_markup("" if cell is None else str(cell))
    return Text(text.plain[:_FOLD_WIDTH])


def _compact_table(
    title: str | None,
    columns: Sequence[Column],
    rows: Sequence[Sequence[Any]],
    indexes: Sequence[int],
    caption: str | None,
) -> Table:
    table = Table(
        title=title,
        caption=caption,
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        title_justify="left",
        caption_justify="left",
    )
    for column in columns:
        if column.fold:
            table.add_column(column.name, justify=column.justify, overflow="fold")
        else:
            table.add_column(column.name, justify=column.justify, no_wrap=True)
    for row in rows:
        table.add_row(*(_cell(row[i]) for i in indexes))
    return table


def _cell(value: Any) -> str | Text:
    if isinstance(value, Text):
        return value
    return "" if value is None else str(value)


def status_style(status: str) -> str:
    """Colour a status word for rich output."""
    colour = {
        "succeeded": "green",
        "ok": "green",
        "skipped": "yellow",
        "partial": "yellow",
        "failed": "red",
        "refused": "red",
        "running": "cyan",
        "abandoned": "red",
    }.get(status, "white")
    return f"[{colour}]{status}[/{colour}]"


class SyncProgress:
    """A rich progress bar over contexts, shown only on a terminal."""

    def __init__(self, enabled: bool = True, label: str = "contexts") -> None:
        console = stderr_console()
        self._enabled = enabled and console.is_terminal
        self._label = label
        self._progress: Any = None
        self._task: Any = None
        self._console = console

    def __enter__(self) -> SyncProgress:
        if self._enabled:  # rich.progress only on a terminal: a pod's job never loads it
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[last]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=self._console,
                transient=True,
            )
            self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(None, None, None)

    def start(self, total: int) -> None:
        if self._progress is not None:
            self._task = self._progress.add_task(self._label, total=total, last="")

    def update(self, done: int, total: int) -> None:
        """Set absolute progress (backfills report done / total keys)."""
        if self._progress is not None:
            if self._task is None:
                self._task = self._progress.add_task(self._label, total=total, last="")
            self._progress.update(self._task, completed=done, total=total)

    def advance(self, result: Any) -> None:
        if self._progress is not None and self._task is not None:
            name = getattr(result, "context", "")
            status = getattr(result, "status", "")
            self._progress.update(self._task, advance=1, last=f"{name} {status}")
