"""Consoles, tables, progress bars and JSON documents: what every renderer prints with.

rich loads when something is drawn or a console is asked for, not with this module: a job
writing JSON lines (``print_json``, a ``SyncProgress`` off a terminal) never imports it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from fulcrum_sync.jsonable import jsonable

if TYPE_CHECKING:  # rich.progress is imported when a bar is shown (a terminal)
    from rich.console import Console
    from rich.progress import Progress

    from fulcrum_sync.render.table import Column

__all__ = [
    "SyncProgress",
    "print_json",
    "print_table",
    "status_style",
    "stderr_console",
    "stdout_console",
]


class _Stdout:
    """``sys.stdout`` for a console, written through at once: when its reader has gone
    (``fulcrum-sync sync | head -1``) the rest is dropped, and the command still ends with
    the exit code of what it did, not 1 from a failed flush at exit."""

    def write(self, text: str) -> int:
        with _reader_may_go():
            sys.stdout.write(text)
            sys.stdout.flush()
        return len(text)

    def flush(self) -> None:
        with _reader_may_go():
            sys.stdout.flush()

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding: stdout's own
        return getattr(sys.stdout, name)


@contextlib.contextmanager
def _reader_may_go() -> Iterator[None]:
    try:
        yield
    except BrokenPipeError:
        from fulcrum_sync.logs import to_devnull

        to_devnull(sys.stdout)


def stdout_console() -> Console:
    """A console on stdout: plain and 200 columns wide when not a terminal (pipes and logs read
    well), unless ``COLUMNS`` sets the width."""
    from rich.console import Console

    console = Console(file=_Stdout(), highlight=False)  # type: ignore[arg-type]
    if not console.is_terminal and not os.environ.get("COLUMNS", "").isdigit():
        console = Console(file=_Stdout(), highlight=False, width=200)  # type: ignore[arg-type]
    return console


def stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True, highlight=False)


def print_json(value: Any) -> None:
    """Print ``value`` as one JSON document on stdout."""
    _Stdout().write(json.dumps(jsonable(value), indent=2, sort_keys=False) + "\n")


def print_table(
    console: Console,
    title: str | None,
    columns: Sequence[str | Column],
    rows: Iterable[Sequence[Any]],
    *,
    caption: str | None = None,
) -> list[str]:
    """Print a table through :func:`print_fitted` (it fits the terminal, never breaking an
    identifier). A plain header string is a column that is never dropped, right-aligned when
    its name says it holds numbers. Return the dropped headers."""
    from fulcrum_sync.render.table import Column, print_fitted

    specs = [
        c if isinstance(c, Column) else Column(c, "right" if _numeric(c) else "left")
        for c in columns
    ]
    return print_fitted(console, title, specs, list(rows), caption=caption, hidden="--json")


def _numeric(name: str) -> bool:
    return name.lower().startswith(("rows", "count", "n ", "duration", "size"))


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


_LIVE: list[Progress] = []  # the progress bar on screen, if any (one at a time)


def say_above_progress(text: str) -> None:
    """Print ``text`` on stderr on a line of its own: above the progress bar while one is on
    screen (rich moves the bar down), else plainly. Used for the SIGTERM/Ctrl-C notice, which
    was glued to the bar's line when written straight to stderr."""
    if _LIVE:
        _LIVE[-1].console.print(text, markup=False, highlight=False)
    else:
        stderr_console().print(text, markup=False, highlight=False)


def _maybe_terminal(stream: Any) -> bool:
    """False when rich would surely say ``stream`` is no terminal (then rich need not load):
    it is not a tty and neither ``TTY_COMPATIBLE=1`` nor ``FORCE_COLOR`` says otherwise."""
    if os.environ.get("TTY_COMPATIBLE") == "1" or os.environ.get("FORCE_COLOR"):
        return True
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class SyncProgress:
    """A rich progress bar over contexts, shown only on a terminal."""

    def __init__(self, enabled: bool = True, label: str = "contexts") -> None:
        console = stderr_console() if enabled and _maybe_terminal(sys.stderr) else None
        self._enabled = console is not None and console.is_terminal
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
            _LIVE.append(self._progress)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            if self._progress in _LIVE:
                _LIVE.remove(self._progress)
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
