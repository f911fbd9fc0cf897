"""Print results for people (rich tables) or machines (JSON); nothing else."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from enum import Enum
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.table import Table


def stdout_console() -> Console:
    """A console on stdout (plain when not a terminal, so pipes and pods read well)."""
    return Console(soft_wrap=True, highlight=False)


def stderr_console() -> Console:
    return Console(stderr=True, soft_wrap=True, highlight=False)


def to_jsonable(value: Any) -> Any:
    """Turn dataclasses, pydantic models, dates and enums into JSON-ready values."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, float) and value != value:  # NaN
        return None
    return value


def print_json(value: Any) -> None:
    """Print ``value`` as one JSON document on stdout."""
    sys.stdout.write(json.dumps(to_jsonable(value), indent=2, sort_keys=False) + "\n")
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


def status_style(status: str) -> str:
    """Colour a status word for rich output."""
    colour = {
        "succeeded": "green",
        "ok": "green",
        "skipped": "yellow",
        "partial": "yellow",
        "failed": "red",
        "running": "cyan",
    }.get(status, "white")
    return f"[{colour}]{status}[/{colour}]"
