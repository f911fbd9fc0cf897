"""A dialect-aware ``INSERT … ON CONFLICT DO UPDATE`` for small bookkeeping writes."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table


def upsert_rows(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    update: Sequence[str] | None = None,
) -> None:
    """Insert ``rows``; on a primary-key conflict overwrite ``update`` columns (default: all)."""
    if not rows:
        return
    keys = {c.name for c in table.primary_key.columns}
    columns = update if update is not None else [c for c in rows[0] if c not in keys]
    conn.execute(_statement(conn.dialect.name, table, tuple(columns)), list(rows))


def dialect_insert(dialect_name: str, table: Table) -> Any:
    """The dialect's own INSERT (with ON CONFLICT), PostgreSQL's or SQLite's; imported on
    first use, so a SQLite run never loads the PostgreSQL dialect (and the reverse)."""
    if dialect_name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


@functools.lru_cache(maxsize=64)
def _statement(dialect_name: str, table: Table, columns: tuple[str, ...]) -> Any:
    """The upsert statement, built once: ``stmt.excluded`` alone costs ~1 ms per build."""
    stmt = dialect_insert(dialect_name, table)
    keys = [c.name for c in table.primary_key.columns]
    if not columns:
        return stmt.on_conflict_do_nothing(index_elements=keys)
    return stmt.on_conflict_do_update(
        index_elements=keys, set_={c: stmt.excluded[c] for c in columns}
    )


def insert_ignore(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows``, leaving any that already exist untouched."""
    upsert_rows(conn, table, rows, update=())
