"""The one table renderer: every command's table fits the terminal (SPEC §7).

A table that is too wide gives way in three steps, in this order:

1. **Columns are dropped** by priority: each :class:`Column` has a ``drop`` rank (0 = never
   dropped); the highest rank goes first until the table fits. The dropped columns are named
   under the table (``hidden at 80 columns: window, skipped (see --json)``): ``--json`` keeps
   every field.
2. **Identifiers shrink, never break.** Cells are ``no_wrap``: a context such as
   ``acme::new_revenue``, a pattern name, a run id or a word like ``unchanged`` is never cut
   across lines. If the kept columns still do not fit, the widest left-aligned columns are
   shortened with an ellipsis in the middle (``acme::new_…revenue``) down to a floor.
3. **Free text wraps at spaces.** A ``fold`` column (an error, a description) counts with a
   short width while fitting and then wraps onto more lines at word boundaries; a word longer
   than the column ends in an ellipsis rather than continuing on the next line.

Use it as ``print_fitted(console, title, COLUMNS, rows)``; cells may hold rich markup or
:class:`rich.text.Text`. ``Column`` and ``print_fitted`` are re-exported by
``render.console`` for older callers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

ELLIPSIS = "…"
FOLD_WIDTH = 16  # the width a free-text column counts with while fitting
SHRINK_FLOOR = 12  # an identifier is never shortened below this (or its header)
_GAP = 3  # columns between two cells of the compact box (padding, rule, padding)


@dataclass(frozen=True, slots=True)
class Column:
    """A column of :func:`print_fitted`: its header, alignment and how it gives way.

    :param drop: 0 keeps the column whatever the width; otherwise the highest ``drop`` goes
        first when the table is wider than the terminal.
    :param fold: free text (an error, a description): it may wrap onto more lines, at
        spaces, instead of widening the table. Identifiers are never ``fold``.
    """

    name: str
    justify: Literal["left", "right"] = "left"
    drop: int = 0
    fold: bool = False


@dataclass(frozen=True, slots=True)
class Fit:
    """How a table fits a width: the columns kept (indexes) and the identifier caps."""

    kept: tuple[int, ...]
    caps: dict[int, int]
    dropped: tuple[str, ...]


def print_fitted(
    console: Console,
    title: str | None,
    columns: Sequence[Column],
    rows: Sequence[Sequence[Any]],
    *,
    caption: str | None = None,
    hidden: str | None = None,
) -> list[str]:
    """Print a compact table with one line per row, fitted to the console's width.

    :param hidden: where the dropped columns can be seen (e.g. ``"--json"``); when given and
        a column was dropped, a dim line under the table names them. ``None`` prints nothing
        (the caller says it itself).
    :returns: the headers of the dropped columns.
    """
    cells = [[_text(cell) for cell in row] for row in rows]
    fit = fit_columns(console.width, columns, cells)
    console.print(_table(title, columns, cells, fit, caption))
    if fit.dropped and hidden:
        say_hidden(console, fit.dropped, hidden)
    return list(fit.dropped)


def say_hidden(console: Console, dropped: Sequence[str], where: str = "--json") -> None:
    """Name the columns left out at this width, and where to see them."""
    console.print(
        f"[dim]hidden at {console.width} columns: {', '.join(dropped)} (see {where})[/dim]"
    )


def fit_columns(width: int, columns: Sequence[Column], cells: Sequence[Sequence[Text]]) -> Fit:
    """Decide which columns to keep and how far to shorten identifiers to fit ``width``."""
    widths = [cell_len(c.name) for c in columns]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], cell.cell_len)
    counted = [
        max(cell_len(c.name), min(w, FOLD_WIDTH)) if c.fold else w
        for c, w in zip(columns, widths, strict=True)
    ]
    kept = list(range(len(columns)))
    while _total(counted, kept) > width:
        droppable = [i for i in kept if columns[i].drop]
        if not droppable:
            break
        kept.remove(max(droppable, key=lambda i: (columns[i].drop, i)))
    caps = _shrink(width, columns, counted, kept)
    dropped = tuple(c.name for i, c in enumerate(columns) if i not in kept)
    return Fit(tuple(kept), caps, dropped)


def _total(widths: Sequence[int], kept: Sequence[int]) -> int:
    return sum(widths[i] for i in kept) + _GAP * max(len(kept) - 1, 0)


def _shrink(
    width: int, columns: Sequence[Column], counted: Sequence[int], kept: Sequence[int]
) -> dict[int, int]:
    """Shorten the widest left-aligned, non-folding columns one cell at a time until the
    table fits (or every one is at its floor). Returns column index -> width cap."""
    current = {i: counted[i] for i in kept}
    floor = {
        i: max(SHRINK_FLOOR, cell_len(columns[i].name))
        for i in kept
        if columns[i].justify == "left" and not columns[i].fold
    }
    excess = _total(counted, kept) - width
    while excess > 0:
        room = [i for i in floor if current[i] > floor[i]]
        if not room:
            break
        widest = max(room, key=lambda i: (current[i], -i))
        current[widest] -= 1
        excess -= 1
    return {i: current[i] for i in floor if current[i] < counted[i]}


def _table(
    title: str | None,
    columns: Sequence[Column],
    cells: Sequence[Sequence[Text]],
    fit: Fit,
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
    for i in fit.kept:
        column = columns[i]
        if column.fold:
            # Wraps at spaces; a word longer than the column ends in an ellipsis, never folds.
            table.add_column(column.name, justify=column.justify, overflow="ellipsis")
        else:
            table.add_column(column.name, justify=column.justify, no_wrap=True, overflow="ellipsis")
    for row in cells:
        table.add_row(*(_capped(row[i], fit.caps.get(i)) for i in fit.kept))
    return table


def _capped(cell: Text, cap: int | None) -> Text:
    return cell if cap is None else shorten(cell, cap)


def shorten(text: Text, width: int) -> Text:
    """``text`` in at most ``width`` cells, with an ellipsis in the middle if it must shrink:
    ``acme::new_revenue`` at 12 is ``acme::…venue`` (both ends stay recognisable)."""
    if text.cell_len <= width or width < 3:
        return text
    plain = text.plain
    tail = (width - 1) // 2
    head = width - 1 - tail
    short = text[:head]
    short.append(ELLIPSIS)
    short.append_text(text[len(plain) - tail :])
    return short


def _text(cell: Any) -> Text:
    """A cell as rich Text: markup in strings is read, ``None`` is empty."""
    if isinstance(cell, Text):
        return cell
    if cell is None:
        return Text("")
    value = str(cell)
    return Text.from_markup(value) if "[" in value else Text(value)


def command_lines(command: str, width: int, prefix: str = "", indent: int = 4) -> list[str]:
    """A shell command laid out in ``width`` columns and still pasteable: it breaks only
    between arguments (never inside a quoted one), keeps an option beside its value, and ends
    each broken line with `` \\`` so a shell reads the lines as one command.

    ``prefix`` starts the first line (``"    fix: "``); later lines are indented ``indent``
    more than the prefix's own indentation.
    """
    groups = _argument_groups(command)
    lead = " " * (len(prefix) - len(prefix.lstrip()) + indent)
    lines: list[str] = []
    line = prefix + (groups[0] if groups else "")
    for group in groups[1:]:
        if cell_len(line) + 1 + cell_len(group) + 2 <= width:
            line += " " + group
        else:
            lines.append(line + " \\")
            line = lead + group
    lines.append(line)
    return lines


def _argument_groups(command: str) -> list[str]:
    """Split at unquoted spaces; an option (``--x``) keeps the value that follows it."""
    words: list[str] = []
    current, quote = "", ""
    for char in command:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == " ":
            if current:
                words.append(current)
            current = ""
            continue
        current += char
    if current:
        words.append(current)
    groups: list[str] = []
    for word in words:
        last = groups[-1] if groups else ""
        if last.startswith("-") and " " not in last and "=" not in last and word[:1] != "-":
            groups[-1] += " " + word
        else:
            groups.append(word)
    return groups
