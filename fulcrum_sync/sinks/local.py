"""The local cache target: the same cache tables, in the state database (the default).

A load is atomic: the table is created if missing, emptied and refilled in one transaction,
so a reader sees the old rows or the new ones, never a half-loaded table; two loads of one
table run one after the other. Sizes come from
SQLite's ``dbstat`` (when compiled in) or PostgreSQL's ``pg_total_relation_size``; otherwise
they are estimated from the loaded rows and flagged as estimates.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import (
    Column,
    Date,
    Engine,
    Float,
    MetaData,
    String,
    Table,
    delete,
    func,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.schema import CreateTable

from fulcrum_sync.domain import Grain, SinkError
from fulcrum_sync.sinks.base import (
    FRAME_COLUMNS,
    CacheRow,
    LoadStats,
    SerialBatch,
    estimate_bytes,
)
from fulcrum_sync.sinks.identifiers import CacheTable, cache_table_name, quote
from fulcrum_sync.sql_types import UTCDateTime

if TYPE_CHECKING:
    import pandas as pd

T = TypeVar("T")

POSTGRES_MAX_IDENTIFIER = 63


def cache_table(name: str) -> Table:
    """Return the SQLAlchemy definition of the cache table ``name`` (always quoted)."""
    return Table(
        name,
        MetaData(),
        Column("date", Date, nullable=False),
        Column("dimension_name", String(64)),
        Column("dimension_slice", String(255)),
        Column("value", Float, nullable=False),
        Column("grain", String(8), nullable=False),
        Column("loaded_at", UTCDateTime(), nullable=False),
        quote=True,
    )


class LocalSink:
    """Cache tables in the state database (SQLite or PostgreSQL).

    :param engine: the state database's engine; the caller owns (and disposes of) it.
    """

    target = "local"

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._schema = "main" if engine.dialect.name == "sqlite" else "public"

    @property
    def destination(self) -> str:
        return "local"

    def __repr__(self) -> str:
        return f"LocalSink({self._engine.url.render_as_string(hide_password=True)!r})"

    def table_for(self, tenant: str, metric: str, grain: Grain) -> CacheTable:
        """Return ``<schema>.cache_<tenant>_<metric>_<grain>``; raise InputError if unsafe."""
        name = cache_table_name(tenant, metric, grain, POSTGRES_MAX_IDENTIFIER).lower()
        quote(name, "cache table name")
        return CacheTable(name=name, qualified=f"{self._schema}.{name}")

    def open(self) -> None:
        """Check the database answers and learn the schema tables go to (PostgreSQL)."""
        self._again_if_lost(self._open)

    def _open(self) -> None:
        with self._translate("connect to the local cache in"), self._engine.connect() as conn:
            if self._engine.dialect.name == "postgresql":
                self._schema = str(conn.execute(text("SELECT current_schema()")).scalar_one())

    def ensure_table(self, table: CacheTable) -> None:
        """Create ``table`` if it does not exist."""
        self._again_if_lost(lambda: self._ensure_table(table))

    def _ensure_table(self, table: CacheTable) -> None:
        with self._translate(f"create {table.qualified} in"), self._engine.begin() as conn:
            conn.execute(CreateTable(cache_table(table.name), if_not_exists=True))

    def replace(
        self, table: CacheTable, frame: pd.DataFrame, grain: Grain, loaded_at: datetime
    ) -> LoadStats:
        """Replace the table's rows with ``frame`` in one transaction; return rows and size."""
        return self._again_if_lost(lambda: self._replace(table, frame, grain, loaded_at))

    def _replace(
        self, table: CacheTable, frame: pd.DataFrame, grain: Grain, loaded_at: datetime
    ) -> LoadStats:
        sa_table = cache_table(table.name)
        records = _records(frame, grain, loaded_at)
        with self._translate(f"load {table.qualified} in"), self._engine.begin() as conn:
            conn.execute(CreateTable(sa_table, if_not_exists=True))
            if conn.dialect.name == "postgresql":
                # Serialize concurrent loads of one table (readers are not blocked); without
                # it two loads could each keep the other's rows. SQLite's BEGIN IMMEDIATE
                # already serializes writers.
                quoted = conn.dialect.identifier_preparer.format_table(sa_table)
                conn.execute(text(f"LOCK TABLE {quoted} IN EXCLUSIVE MODE"))
            conn.execute(delete(sa_table))
            if records:
                conn.execute(insert(sa_table), records)
            rows = int(conn.execute(select(func.count()).select_from(sa_table)).scalar_one())
        size = self._size(table)
        if size is None:
            return LoadStats(rows, estimate_bytes(frame, grain), size_estimated=True)
        return LoadStats(rows, size)

    def read(self, table: CacheTable) -> list[CacheRow] | None:
        """Return the table's rows (None when it does not exist)."""
        return self._again_if_lost(lambda: self._read(table))

    def _read(self, table: CacheTable) -> list[CacheRow] | None:
        sa_table = cache_table(table.name)
        c = sa_table.c
        query = select(c.date, c.dimension_name, c.dimension_slice, c.value)
        with self._translate(f"read {table.qualified} in"), self._engine.connect() as conn:
            if not inspect(conn).has_table(table.name):
                return None
            rows = conn.execute(query).all()
        return [(_day(r[0]), r[1], r[2], float(r[3])) for r in rows]

    def close(self) -> None:
        """Nothing to release: the engine belongs to the caller."""

    def batch(self) -> SerialBatch:
        """Tables loaded one after the other, each in its own transaction."""
        return SerialBatch(self)

    def _size(self, table: CacheTable) -> int | None:
        dialect = self._engine.dialect.name
        if dialect == "sqlite":
            query = text("SELECT SUM(pgsize) FROM dbstat WHERE name = :name")
            params = {"name": table.name}
        elif dialect == "postgresql":
            query = text("SELECT pg_total_relation_size(CAST(:name AS regclass))")
            params = {"name": f"{quote(self._schema, 'schema')}.{quote(table.name)}"}
        else:
            return None
        try:
            with self._engine.connect() as conn:
                value = conn.execute(query, params).scalar()
        except SQLAlchemyError:  # e.g. SQLite built without dbstat: estimate instead
            return None
        return None if value is None else int(value)

    def _again_if_lost(self, call: Callable[[], T]) -> T:
        """Run ``call`` (whole transactions) once more when its connection was lost: the pool
        pings only connections that sat idle, and replaces the others once one fails."""
        try:
            return call()
        except SinkError as exc:
            from fulcrum_sync.store.retry import is_disconnect

            if not is_disconnect(self._engine, exc.__cause__):
                raise
            return call()

    @contextlib.contextmanager
    def _translate(self, action: str) -> Iterator[None]:
        """Turn SQLAlchemy errors into SinkError naming the (password-masked) database."""
        try:
            yield
        except SQLAlchemyError as exc:
            url = self._engine.url
            orig = getattr(exc, "orig", None) or exc
            lines = str(orig).strip().splitlines()
            detail = lines[0] if lines else type(orig).__name__
            if url.password:
                detail = detail.replace(str(url.password), "***")
            from fulcrum_sync.store.endpoint import database_address, database_endpoint

            message = f"{database_endpoint(url)}: cannot {action}: {detail}"
            raise SinkError(message, endpoint=database_address(url)) from exc


def _records(frame: pd.DataFrame, grain: Grain, loaded_at: datetime) -> list[dict[str, Any]]:
    """Rows of ``frame`` as insert parameters (missing dimensions become NULL)."""
    if frame.empty:
        return []
    clean = frame[list(FRAME_COLUMNS)].astype(object)
    clean = clean.where(frame[list(FRAME_COLUMNS)].notna(), None)
    return [
        {
            "date": day,
            "dimension_name": name,
            "dimension_slice": slice_,
            "value": None if value is None else float(value),
            "grain": grain.value,
            "loaded_at": loaded_at,
        }
        for day, name, slice_, value in clean.itertuples(index=False, name=None)
    ]


def _day(value: Any) -> date:
    """A date column's value as a date (SQLite may hand back text)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    return value  # type: ignore[no-any-return]
