"""A dialect-aware ``INSERT … ON CONFLICT DO UPDATE`` for small bookkeeping writes."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


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


@functools.lru_cache(maxsize=64)
def _statement(dialect_name: str, table: Table, columns: tuple[str, ...]) -> Any:
    """The upsert statement, built once: ``stmt.excluded`` alone costs ~1 ms per build."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    stmt = dialect.insert(table)
    keys = [c.name for c in table.primary_key.columns]
    if not columns:
        return stmt.on_conflict_do_nothing(index_elements=keys)
    return stmt.on_conflict_do_update(
        index_elements=keys, set_={c: stmt.excluded[c] for c in columns}
    )


def insert_ignore(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows``, leaving any that already exist untouched."""
    upsert_rows(conn, table, rows, update=())
