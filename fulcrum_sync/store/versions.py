"""The data version of each context: a counter raised with every change to its stored series.

:func:`bump` runs inside the transaction that changed the rows (``sync_write.write_context``, a
``state reset`` of values), so a version is never newer or older than the rows it stands for.
A cache load records the version it read (store/cache.py); the next load compares.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, select, update

from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import reconnecting, translate_errors
from fulcrum_sync.store.upsert import dialect_insert

ContextKey = tuple[int, str, str]  # tenant_id, metric_id, grain


def bump(conn: Connection, tenant_id: int, metric_id: str, grain: str) -> None:
    """Raise the context's version by one (1 on its first write), in the caller's transaction."""
    bump_all(conn, [(tenant_id, metric_id, grain)])


def bump_all(conn: Connection, contexts: list[ContextKey]) -> None:
    """:func:`bump` each of ``contexts`` (in their order: keep them sorted) in one statement."""
    if not contexts:
        return
    now = datetime.now(UTC)
    rows = [
        {"tenant_id": ti, "metric_id": m, "grain": g, "version": 1, "changed_at": now}
        for ti, m, g in contexts
    ]
    conn.execute(_bump(conn.dialect.name), rows)


@functools.lru_cache(maxsize=4)
def _bump(dialect_name: str) -> Any:
    table = t.series_versions
    stmt = dialect_insert(dialect_name, table)
    return stmt.on_conflict_do_update(
        index_elements=[c.name for c in table.primary_key.columns],
        set_={"version": table.c.version + 1, "changed_at": stmt.excluded.changed_at},
    )


def bump_matching(conn: Connection, where: Any) -> int:
    """Raise the version of every context ``where`` selects (a scoped delete of values)."""
    result = conn.execute(
        update(t.series_versions)
        .where(where)
        .values(version=t.series_versions.c.version + 1, changed_at=datetime.now(UTC))
    )
    return result.rowcount or 0


@reconnecting
def read_versions(engine: Engine, grain: str | None = None) -> dict[ContextKey, int]:
    """Return every context's version (of ``grain``, or all)."""
    c = t.series_versions.c
    query = select(c.tenant_id, c.metric_id, c.grain, c.version)
    if grain is not None:
        query = query.where(c.grain == grain)
    with translate_errors(engine, "read data versions from"), engine.connect() as conn:
        return {(r[0], r[1], r[2]): r[3] for r in conn.execute(query)}


def read_version(conn: Connection, tenant_id: int, metric_id: str, grain: str) -> int | None:
    """Return one context's version (None: nothing was ever written for it)."""
    c = t.series_versions.c
    query = select(c.version).where(
        and_(c.tenant_id == tenant_id, c.metric_id == metric_id, c.grain == grain)
    )
    return conn.execute(query).scalar_one_or_none()
