"""Run the few statements every synced context writes on SQLite's own cursor.

A context's transaction writes its statuses, completes its run key and raises its data
version: three small statements, each of which cost more in SQLAlchemy's execution layers
(a context per statement, events, result objects) than in SQLite. Here each statement is
compiled once, as SQLAlchemy compiles it, and its parameters go through the same bind
processors (dates and timestamps as SQLAlchemy stores them, JSON as it serializes it); only
the execution skips those layers, as store/series.py does for the series' rows. Driver errors
are what ``translate_errors`` translates already.

On another database, or for a statement this cannot run as SQLAlchemy would (defaults to
compute, expanding parameters), the statement goes through SQLAlchemy as before.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import Executable

_Getter = Callable[[Mapping[str, Any]], Any]


@dataclass(frozen=True, slots=True)
class _Plan:
    """A statement compiled for SQLite: its SQL and how each positional parameter is made."""

    sql: str
    getters: tuple[_Getter, ...]

    def parameters(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple([get(row) for get in self.getters])


def execute(conn: Connection, stmt: Executable, rows: Sequence[Mapping[str, Any]]) -> int:
    """Run ``stmt`` once per row of ``rows`` (parameters by key); return the rows it changed."""
    plan = (
        _plan(stmt, conn.dialect, tuple(sorted(rows[0])))
        if rows and conn.dialect.name == "sqlite"
        else None
    )
    if plan is None:
        return conn.execute(stmt, list(rows)).rowcount
    cursor: Any = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    if len(rows) == 1:
        cursor.execute(plan.sql, plan.parameters(rows[0]))
    else:
        cursor.executemany(plan.sql, [plan.parameters(r) for r in rows])
    return int(cursor.rowcount)


@functools.lru_cache(maxsize=32)
def _plan(stmt: Executable, dialect: Dialect, keys: tuple[str, ...]) -> _Plan | None:
    """Compile ``stmt`` for rows with ``keys``; None when only SQLAlchemy can run it."""
    compiled: Any = cast(Any, stmt).compile(dialect=dialect, column_keys=list(keys))
    if (
        compiled.positiontup is None
        or compiled.insert_prefetch
        or compiled.update_prefetch
        or compiled.postfetch
        or compiled.literal_execute_params
        or compiled.post_compile_params
    ):
        return None
    processors: dict[str, Callable[[Any], Any]] = compiled._bind_processors
    getters: list[_Getter] = []
    for name in compiled.positiontup:
        bind = compiled.binds[name]
        process = processors.get(name)
        if bind.key in keys:
            getters.append(_from_row(bind.key, process))
        elif bind.required or bind.callable is not None:
            return None
        else:  # a value written in the statement itself
            getters.append(_fixed(bind.value if process is None else process(bind.value)))
    return _Plan(compiled.string, tuple(getters))


def _fixed(value: Any) -> _Getter:
    return lambda _row: value


def _from_row(key: str, process: Callable[[Any], Any] | None) -> _Getter:
    if process is None:
        return lambda row: row[key]
    return lambda row: process(row[key])


__all__ = ["execute"]
