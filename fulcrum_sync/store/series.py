"""Bulk writes of time series: atomic FULL replace and counted INCREMENTAL upsert.

PostgreSQL writes go through COPY (into the table for a replace, into a temporary table
followed by one ``INSERT … ON CONFLICT`` for an upsert); SQLite uses ``executemany`` in one
transaction. Upserts skip unchanged rows (``WHERE stored.value IS DISTINCT FROM excluded``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, Table, and_, bindparam, delete, func, select

from fulcrum_sync.store import tables as t


@dataclass(frozen=True, slots=True)
class SeriesKey:
    """Which series: a metric's base series, or one of its dimensions' (``dimension`` set)."""

    tenant_id: int
    metric_id: str
    grain: str
    dimension: str | None = None

    @property
    def table(self) -> Table:
        return t.metric_dimensional_time_series if self.dimension else t.metric_time_series


@dataclass(frozen=True, slots=True)
class WriteCounts:
    """Rows inserted, updated and left unchanged by one write."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0

    @property
    def stored(self) -> int:
        return self.inserted + self.updated


SERIES_TABLES = (t.metric_time_series, t.metric_dimensional_time_series)
ANALYZE_STAGE_ROWS = 10_000  # analyze staged rows from this many on
READ_FIRST_ROWS = 5_000  # PostgreSQL upserts up to this many rows read the window first

# A clean row: (date, value) for a base series, (date, slice, value) for a dimension.
CleanRow = tuple[Any, ...]


def _full_rows(key: SeriesKey, rows: Sequence[CleanRow]) -> list[tuple[Any, ...]]:
    head: tuple[Any, ...] = (key.tenant_id, key.metric_id, key.grain)
    if key.dimension:
        return [(*head, key.dimension, r[1], r[0], r[2]) for r in rows]
    return [(*head, r[0], r[1]) for r in rows]


def _columns(table: Table) -> list[str]:
    return [c.name for c in table.columns]


def _key_columns(table: Table) -> list[str]:
    return [c.name for c in table.primary_key.columns]


def replace_series(conn: Connection, key: SeriesKey, rows: Sequence[CleanRow]) -> WriteCounts:
    """Replace the whole series with ``rows`` inside the caller's transaction."""
    table = key.table
    ids = {"t": key.tenant_id, "m": key.metric_id, "g": key.grain, "d": key.dimension}
    deleted = conn.execute(_DELETE[table.name], ids).rowcount or 0
    full = _full_rows(key, rows)
    if full:
        if conn.dialect.name == "postgresql":
            _copy(conn, table.name, _columns(table), full)
        else:
            cols = _columns(table)
            placeholders = ", ".join("?" * len(cols))
            sql = f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({placeholders})"
            conn.exec_driver_sql(sql, _sqlite_rows(full))
    return WriteCounts(inserted=len(full), deleted=deleted)


def upsert_series(
    conn: Connection, key: SeriesKey, rows: Sequence[CleanRow], *, known: int = 0
) -> WriteCounts:
    """Insert new rows and update changed ones inside the caller's transaction.

    ``known``: the first ``known`` rows are stored as they are (the window's digest says so,
    store/digests.py); only the rows after them are written, without reading the window back.
    """
    if not rows:
        return WriteCounts()
    if known:  # a slice of CleanRows makes the rows of the slice only (domain/columns.py)
        return _write_unread(conn, key, rows[known:], len(rows))
    if conn.dialect.name == "postgresql":
        if len(rows) <= READ_FIRST_ROWS:
            return _upsert_postgres_window(conn, key, rows)
        return _upsert_postgres(conn, key.table, _full_rows(key, rows))
    return _upsert_sqlite(conn, key, rows)


def _copy(
    conn: Connection, table_name: str, columns: list[str], rows: list[tuple[Any, ...]]
) -> None:
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(f"COPY {table_name} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


class _IsoDates(dict[Any, Any]):
    """Dates as the ISO text SQLite stores, each formatted once per process (every series of
    a run shares its window's dates); anything that is not a date is kept as it is."""

    def __missing__(self, day: Any) -> Any:
        text = day.isoformat() if isinstance(day, date) else day
        if len(self) < 100_000:
            self[day] = text
        return text


_ISO_DATES = _IsoDates()


def _sqlite_rows(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    # sqlite3's implicit date adapter is deprecated; store the ISO text SQLAlchemy's Date reads.
    # Only the date column holds dates, and a window has few distinct ones: format each once.
    at = next((i for i, v in enumerate(rows[0]) if isinstance(v, date)), None) if rows else None
    if at is None:
        return rows
    iso = {d: d.isoformat() for d in {row[at] for row in rows}}
    return [(*row[:at], iso[row[at]], *row[at + 1 :]) for row in rows]


def _upsert_postgres_window(
    conn: Connection, key: SeriesKey, rows: Sequence[CleanRow]
) -> WriteCounts:
    # A lookback window (up to READ_FIRST_ROWS rows): read what is stored in it and send only
    # the new and changed rows, as arrays in one INSERT … ON CONFLICT whose RETURNING counts
    # them: 2 round trips instead of a temporary table's 4 (create, truncate, COPY, insert).
    # Larger writes take the COPY path below.
    cursor: Any = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    table = key.table.name
    head: tuple[Any, ...] = (key.tenant_id, key.metric_id, key.grain)
    fetched: list[tuple[Any, ...]]
    if key.dimension:
        head = (*head, key.dimension)
        fetched = [(r[1], r[0], r[2]) for r in rows]  # (slice, date, value) as stored
    else:
        fetched = [(r[0], r[1]) for r in rows]  # (date, value)
    dates = [r[0] for r in rows]
    if key.dimension:  # the window of the fetched slices only: not every slice's history
        slices = sorted({r[0] for r in fetched})
        cursor.execute(_PG_READ_SLICES, (*head, slices, min(dates), max(dates)))
    else:
        cursor.execute(_PG_READ[table], (*head, min(dates), max(dates)))
    known = set(cursor.fetchall())
    changed = [r for r in fetched if r not in known]
    if not changed:
        return WriteCounts(0, 0, len(rows))
    cursor.execute(_PG_WRITE[table], (*head, *(list(c) for c in zip(*changed, strict=True))))
    inserted, updated = cursor.fetchone()
    return WriteCounts(inserted, updated, len(rows) - inserted - updated)


def _pg_window_sql(table: Table) -> tuple[str, str]:
    """The read and the array write of :func:`_upsert_postgres_window` for ``table``."""
    cols, keys = _columns(table), _key_columns(table)
    fixed = keys[: keys.index("date") - (1 if "dimension_slice" in keys else 0)]
    varying = [c for c in cols if c not in fixed]  # [dimension_slice,] date, value
    where = " AND ".join(f"{c} = %s" for c in fixed)
    read = f"SELECT {', '.join(varying)} FROM {table.name} WHERE {where} AND date BETWEEN %s AND %s"
    casts = {"tenant_id": "integer", "date": "date", "value": "float8"}
    heads = ", ".join(f"%s::{casts.get(c, 'text')}" for c in fixed)
    arrays = ", ".join(f"%s::{casts.get(c, 'text')}[]" for c in varying)
    write = (
        f"WITH written AS (INSERT INTO {table.name} AS stored ({', '.join(cols)}) "
        f"SELECT {heads}, u.* FROM unnest({arrays}) AS u "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET value = excluded.value "
        f"WHERE stored.value IS DISTINCT FROM excluded.value RETURNING (xmax = 0) AS inserted) "
        f"SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) "
        f"FROM written"
    )
    return read, write


def _upsert_postgres(conn: Connection, table: Table, full: list[tuple[Any, ...]]) -> WriteCounts:
    cols = _columns(table)
    keys = _key_columns(table)
    temp = f"_stage_{table.name}"
    conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {temp} "
        f"(LIKE {table.name} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    conn.exec_driver_sql(f"TRUNCATE {temp}")
    _copy(conn, temp, cols, full)
    if len(full) >= ANALYZE_STAGE_ROWS:
        conn.exec_driver_sql(f"ANALYZE {temp}")  # a temporary table has no statistics
    col_list = ", ".join(cols)
    staged = ", ".join(f"s.{c}" for c in cols)
    match = " AND ".join(f"cur.{k} = s.{k}" for k in keys)
    # Only new and changed rows reach ON CONFLICT: it locks (and WAL-logs) every conflicting
    # row even when its WHERE then skips the update, which tripled the cost of unchanged rows.
    sql = (
        f"WITH written AS ("
        f"INSERT INTO {table.name} AS stored ({col_list}) "
        f"SELECT {staged} FROM {temp} AS s LEFT JOIN {table.name} AS cur ON {match} "
        f"WHERE cur.value IS DISTINCT FROM s.value "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET value = excluded.value "
        f"WHERE stored.value IS DISTINCT FROM excluded.value "
        f"RETURNING (xmax = 0) AS inserted) "
        f"SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) "
        f"FROM written"
    )
    inserted, updated = conn.exec_driver_sql(sql).one()
    return WriteCounts(inserted, updated, len(full) - inserted - updated)


def _upsert_sqlite(conn: Connection, key: SeriesKey, rows: Sequence[CleanRow]) -> WriteCounts:
    # Read the stored window once and write only the rows that are new or changed: most rows
    # of a re-fetched lookback window are unchanged, and one SELECT of the window costs a
    # fraction of an ON CONFLICT check per row. The counts come from that read (new keys) and
    # from the write itself (``total_changes``), not from COUNT(*) around it. The write lock
    # (BEGIN IMMEDIATE) is held from the read to the write, so nothing changes in between.
    raw: Any = conn.connection.driver_connection
    iso = _ISO_DATES.__getitem__
    head: tuple[Any, ...] = (key.tenant_id, key.metric_id, key.grain)
    fetched: list[tuple[Any, ...]]
    if key.dimension:
        head = (*head, key.dimension)
        fetched = [(r[1], iso(r[0]), r[2]) for r in rows]  # (slice, date, value) as stored
    else:
        fetched = [(iso(r[0]), r[1]) for r in rows]  # (date, value)
    table = key.table.name
    window = (iso(min(rows)[0]), iso(max(rows)[0]))  # rows start with their date
    slices = sorted({r[0] for r in fetched}) if key.dimension else []
    if 0 < len(slices) <= 500:  # the window of the fetched slices only, not their history
        sql = _sqlite_slices_read(len(slices))
        stored = raw.execute(sql, (*head, *slices, *window)).fetchall()
    else:
        stored = raw.execute(_SQLITE_READ[table], (*head, *window)).fetchall()
    known = set(stored)
    changed = [r for r in fetched if r not in known]
    if not changed:
        return WriteCounts(0, 0, len(rows))
    return _sqlite_write(raw, table, head, changed, len(rows))


def _sqlite_write(
    raw: Any, table: str, head: tuple[Any, ...], changed: list[tuple[Any, ...]], total: int
) -> WriteCounts:
    # The few new or changed rows: insert the new keys, then update the changed values; each
    # statement's own changes() are the counts (a repeated key: the last value wins). When
    # every row was inserted (the new period of an incremental window), none is to update.
    before = raw.total_changes
    raw.executemany(_SQLITE_INSERT_NEW[table], [(*head, *r) for r in changed])
    inserted = raw.total_changes - before
    if inserted < len(changed):
        raw.executemany(_SQLITE_UPDATE[table], [(r[-1], *head, *r) for r in changed])
    written = raw.total_changes - before
    return WriteCounts(inserted, written - inserted, total - written)


def _write_unread(
    conn: Connection, key: SeriesKey, rows: Sequence[CleanRow], total: int
) -> WriteCounts:
    """Write ``rows`` (new or changed, for all we know) without reading what is stored; the
    other ``total - len(rows)`` rows of the window are known to be stored as they are."""
    if not rows:
        return WriteCounts(0, 0, total)
    head: tuple[Any, ...] = (key.tenant_id, key.metric_id, key.grain)
    table = key.table.name
    if conn.dialect.name == "postgresql":
        cursor: Any = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        if key.dimension:
            head, rows = (*head, key.dimension), [(r[1], r[0], r[2]) for r in rows]
        cursor.execute(_PG_WRITE[table], (*head, *(list(c) for c in zip(*rows, strict=True))))
        inserted, updated = cursor.fetchone()
        return WriteCounts(inserted, updated, total - inserted - updated)
    iso = _ISO_DATES.__getitem__
    written: list[tuple[Any, ...]]
    if key.dimension:
        head, written = (*head, key.dimension), [(r[1], iso(r[0]), r[2]) for r in rows]
    else:
        written = [(iso(r[0]), r[1]) for r in rows]
    return _sqlite_write(conn.connection.driver_connection, table, head, written, total)


def _sqlite_write_sql(table: Table) -> tuple[str, str]:
    """Insert a row whose key is new; update a row's value where it differs. The update's
    parameters: the value, the key columns, then the value again."""
    cols, keys = _columns(table), _key_columns(table)
    insert = (  # DO NOTHING on the key only: a NULL value still fails, as it should
        f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
        f"ON CONFLICT ({', '.join(keys)}) DO NOTHING"
    )
    where = " AND ".join(f"{k} = ?" for k in keys)
    update = f"UPDATE {table.name} SET value = ? WHERE {where} AND value IS NOT ?"
    return insert, update


def _sqlite_read_sql(table: Table) -> str:
    # The window's stored rows in the shape _upsert_sqlite compares: the columns after the
    # series' identity (date[, slice]) and the value, in the table's column order.
    keys = _key_columns(table)
    fixed = keys[: keys.index("date") - (1 if "dimension_slice" in keys else 0)]
    shown = [c for c in _columns(table) if c not in fixed]
    where = " AND ".join(f"{c} = ?" for c in fixed)
    return f"SELECT {', '.join(shown)} FROM {table.name} WHERE {where} AND date >= ? AND date <= ?"


@functools.lru_cache(maxsize=64)
def _sqlite_slices_read(slices: int) -> str:
    """The dimension read restricted to ``slices`` slices: the primary key's index then
    reads each slice's window, not the whole history of the dimension."""
    base = _sqlite_read_sql(t.metric_dimensional_time_series)
    head, _, tail = base.partition(" AND date >= ?")
    return f"{head} AND dimension_slice IN ({', '.join('?' * slices)}) AND date >= ?{tail}"


def _delete_series(table: Table) -> Any:
    """Delete one series (built once; a FULL sync replaces three per context)."""
    c = table.c
    where = and_(
        c.tenant_id == bindparam("t"), c.metric_id == bindparam("m"), c.grain == bindparam("g")
    )
    if "dimension_name" in c:
        where = and_(where, c.dimension_name == bindparam("d"))
    return delete(table).where(where)


_DELETE = {tb.name: _delete_series(tb) for tb in SERIES_TABLES}
_SQLITE_INSERT_NEW = {tb.name: _sqlite_write_sql(tb)[0] for tb in SERIES_TABLES}
_SQLITE_UPDATE = {tb.name: _sqlite_write_sql(tb)[1] for tb in SERIES_TABLES}
_PG_READ = {tb.name: _pg_window_sql(tb)[0] for tb in SERIES_TABLES}
_PG_READ_SLICES = _PG_READ[t.metric_dimensional_time_series.name].replace(
    " AND date BETWEEN", " AND dimension_slice = ANY(%s::text[]) AND date BETWEEN"
)
_PG_WRITE = {tb.name: _pg_window_sql(tb)[1] for tb in SERIES_TABLES}
_SQLITE_READ = {tb.name: _sqlite_read_sql(tb) for tb in SERIES_TABLES}


def read_latest_dates(conn: Connection, grain: str) -> dict[tuple[int, str], date]:
    """Return the latest stored base-series date per (tenant_id, metric_id) for ``grain``."""
    c = t.metric_time_series.c
    query = (
        select(c.tenant_id, c.metric_id, func.max(c.date))
        .where(c.grain == grain)
        .group_by(c.tenant_id, c.metric_id)
    )
    return {(r[0], r[1]): r[2] for r in conn.execute(query)}
