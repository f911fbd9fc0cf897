"""Load many cache tables of one Snowflake destination in a few round trips.

Per destination and run (``SnowflakeBatch.load``)::

    SELECT ... FROM "DB".INFORMATION_SCHEMA.TABLES ... [UNION ALL per database]  -- which exist
    CREATE TABLE IF NOT EXISTS <each missing table>;                 -- first loads only
    CREATE TEMPORARY STAGE IF NOT EXISTS "FULCRUM_SYNC_LOAD";         -- one request
    CREATE OR REPLACE TEMPORARY TABLE "FULCRUM_SYNC_BATCH" (...)
    PUT file:///tmp/.../batch.csv @"FULCRUM_SYNC_LOAD"/<uuid>        -- one file, every table
    COPY INTO "FULCRUM_SYNC_BATCH" FROM @"FULCRUM_SYNC_LOAD"/<uuid>  -- its rows_loaded checked
    BEGIN; INSERT OVERWRITE INTO <table> SELECT ... FROM "FULCRUM_SYNC_BATCH"
           WHERE "TABLE_KEY" = '<table>'; ... ; COMMIT               -- up to 250 tables a request
    SELECT ... BYTES FROM "DB".INFORMATION_SCHEMA.TABLES ...         -- sizes, once

``INSERT OVERWRITE`` truncates and fills a table in one DML statement inside the transaction:
readers see the old rows until the COMMIT and the new ones after it, never an empty table;
the table itself stays (its grants, comments and Time Travel history: no swap, no clone).
Statements go together in one multi-statement request where the connection supports them
(the real connector; ``num_statements``), one by one otherwise (fakesnow runs one statement
per ``execute``). A transaction writes the tables of one database (DuckDB under fakesnow
cannot write two databases in one). A failing request is rolled back and its tables are
tried one by one, so a bad table fails alone. Rows loaded per table are the rows staged for
it, checked against the COPY's own ``rows_loaded``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fulcrum_sync.domain import FulcrumError, Grain, SinkError
from fulcrum_sync.sinks.base import FRAME_COLUMNS, LoadStats, estimate_bytes
from fulcrum_sync.sinks.identifiers import CacheTable, quote
from fulcrum_sync.sinks.snowflake.link import SnowflakeLink, translate

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

STAGE = '"FULCRUM_SYNC_LOAD"'
BATCH_TABLE = '"FULCRUM_SYNC_BATCH"'
TABLES_PER_REQUEST = 250
COLUMNS_DDL = (
    '"DATE" DATE NOT NULL, "DIMENSION_NAME" VARCHAR, "DIMENSION_SLICE" VARCHAR, '
    '"VALUE" FLOAT NOT NULL, "GRAIN" VARCHAR NOT NULL, "LOADED_AT" TIMESTAMP_NTZ NOT NULL'
)
_BATCH_DDL = (
    '"TABLE_KEY" VARCHAR, "DATE" DATE, "DIMENSION_NAME" VARCHAR, "DIMENSION_SLICE" VARCHAR, '
    '"VALUE" FLOAT'
)
_FRAME_COLS = ", ".join(f'"{c.upper()}"' for c in FRAME_COLUMNS)
_NULL = "\\N"
_FILE_FORMAT = (
    "FILE_FORMAT = (TYPE = CSV FIELD_OPTIONALLY_ENCLOSED_BY = '\"' NULL_IF = ('\\\\N') "
    "EMPTY_FIELD_AS_NULL = FALSE)"
)


def literal(text: str) -> str:
    """A SQL string literal of a validated name or a timestamp (quotes doubled)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def _parts(table: CacheTable) -> tuple[str, str, str]:
    database, schema, name = table.qualified.split(".")
    return database, schema, name


def fqn(table: CacheTable) -> str:
    """``"DB"."SCHEMA"."NAME"``, each part checked and quoted."""
    return ".".join(quote(part) for part in _parts(table))


@dataclass(slots=True)
class _Item:
    table: CacheTable
    rows: int
    grain: Grain | None = None  # None: only make sure the table exists
    loaded_at: datetime | None = None
    estimate: int = 0


class Sender:
    """Runs statements on a connection, several per request where it supports that.

    :param multi: send a list of statements as one multi-statement request. The real
        connector does (``num_statements``); fakesnow does not, and runs them one by one.
    """

    def __init__(self, link: SnowflakeLink, multi: bool) -> None:
        self._link = link
        self.multi = multi

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Run one statement and return its rows."""
        with self._cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())

    def run(self, statements: list[str]) -> list[int]:
        """Run ``statements`` in order (one request when multi); return their row counts
        when sent one by one (a multi-statement request's counts are not fetched)."""
        if not statements:
            return []
        with self._cursor() as cur:
            if self.multi and len(statements) > 1:
                cur.execute(";\n".join(statements), num_statements=len(statements))
                return []
            counts = []
            for sql in statements:
                cur.execute(sql)
                counts.append(int(cur.rowcount or 0))
            return counts

    @contextlib.contextmanager
    def _cursor(self) -> Iterator[Any]:
        if self._link.conn is None:
            raise SinkError("the Snowflake sink is not open: call open() first")
        cur = self._link.conn.cursor()
        try:
            yield cur
        finally:
            with contextlib.suppress(Exception):
                cur.close()


def supports_multi_statement(conn: Any) -> bool:
    """True for the real connector's connections, or a wrapper saying so (``multi_statement``)."""
    declared = getattr(conn, "multi_statement", None)
    if isinstance(declared, bool):
        return declared
    return type(conn).__module__.startswith("snowflake.connector")


class SnowflakeBatch:
    """The changed tables of one destination, staged in one CSV file and loaded together.

    :param link: the destination's open connection.
    """

    def __init__(self, link: SnowflakeLink) -> None:
        self._link = link
        self._items: dict[str, _Item] = {}
        fd, self._path = tempfile.mkstemp(prefix="fulcrum-sync-", suffix=".csv")
        self._file = os.fdopen(fd, "w", newline="", encoding="utf-8")
        self._rows = 0

    def add(
        self, table: CacheTable, frame: pd.DataFrame, grain: Grain, loaded_at: datetime
    ) -> None:
        """Stage ``frame`` as the whole new contents of ``table`` (written to the file now)."""
        fqn(table)  # refuse an unsafe name before anything is staged
        key, field = table.qualified, _text(table.qualified)
        clean = frame[list(FRAME_COLUMNS)]
        self._file.writelines(
            f"{field},{day.isoformat()},{_text(name)},{_text(slice_)},{_number(value)}\n"
            for day, name, slice_, value in clean.itertuples(index=False, name=None)
        )
        self._rows += len(clean)
        estimate = estimate_bytes(frame, grain) if len(frame) else 0
        self._items[key] = _Item(table, len(clean), grain, loaded_at, estimate)

    def ensure(self, table: CacheTable) -> None:
        """Make sure ``table`` exists (created empty if missing; its rows left alone)."""
        fqn(table)
        self._items.setdefault(table.qualified, _Item(table, 0))

    def close(self) -> None:
        """Remove the staged file."""
        with contextlib.suppress(Exception):
            self._file.close()
        with contextlib.suppress(OSError):
            os.unlink(self._path)

    def load(self) -> dict[str, LoadStats | Exception]:
        """Create missing tables, stage, COPY, replace every table; return each one's outcome.

        Raises SinkError when nothing could be loaded (the stage, the PUT or the COPY failed).
        """
        self._file.close()
        config = self._link.config
        sender = Sender(self._link, supports_multi_statement(self._link.conn))
        existing, outcomes = self._existing(sender)
        items = [i for i in self._items.values() if i.table.qualified not in outcomes]
        loads = [i for i in items if i.grain is not None]
        with translate(config, f"stage {len(loads)} cache tables"):
            setup = [
                f"CREATE TABLE IF NOT EXISTS {fqn(i.table)} ({COLUMNS_DDL})"
                for i in items
                if _parts(i.table) not in existing
            ]
            if loads:
                setup += [
                    f"CREATE TEMPORARY STAGE IF NOT EXISTS {STAGE}",
                    f"CREATE OR REPLACE TEMPORARY TABLE {BATCH_TABLE} ({_BATCH_DDL})",
                ]
            sender.run(setup)
            if self._rows:
                self._copy(sender)
        by_database: dict[str, list[_Item]] = {}
        for item in loads:
            by_database.setdefault(_parts(item.table)[0], []).append(item)
        for items in by_database.values():
            for start in range(0, len(items), TABLES_PER_REQUEST):
                outcomes.update(self._replace(sender, items[start : start + TABLES_PER_REQUEST]))
        self._sizes(sender, outcomes)
        return outcomes

    def _copy(self, sender: Sender) -> None:
        path = self._path.replace("\\", "/")
        # A folder of its own: the COPY reads this batch's file and nothing left by another.
        where = f"@{STAGE}/{uuid.uuid4().hex}"
        sender.run([f"PUT 'file://{path}' {where} AUTO_COMPRESS=TRUE OVERWRITE=TRUE"])
        rows = sender.query(
            f"COPY INTO {BATCH_TABLE} FROM {where} {_FILE_FORMAT} "
            "ON_ERROR = ABORT_STATEMENT PURGE = TRUE"
        )
        loaded = sum(int(r[3]) for r in rows if len(r) > 3 and r[3] is not None)
        if loaded != self._rows:
            raise SinkError(f"the COPY loaded {loaded} of {self._rows} staged rows")

    def _replace(self, sender: Sender, items: list[_Item]) -> dict[str, LoadStats | Exception]:
        """Replace ``items`` (one database) in one transaction; on failure, one by one."""
        config = self._link.config
        try:
            what = items[0].table.qualified if len(items) == 1 else f"{len(items)} cache tables"
            with translate(config, f"load {what}"):
                counts = sender.run(["BEGIN", *(_overwrite(i) for i in items), "COMMIT"])
            return {
                i.table.qualified: self._stats(i, counts[k + 1] if counts else None)
                for k, i in enumerate(items)
            }
        except FulcrumError as exc:
            with contextlib.suppress(Exception):
                sender.run(["ROLLBACK"])
            if len(items) == 1:
                return {items[0].table.qualified: exc}
        out: dict[str, LoadStats | Exception] = {}
        for item in items:
            out.update(self._replace(sender, [item]))
        return out

    def _stats(self, item: _Item, inserted: int | None) -> LoadStats | FulcrumError:
        if inserted is not None and inserted != item.rows:
            return SinkError(f"cannot load {item.table.qualified}: {inserted} of {item.rows} rows")
        return LoadStats(item.rows, None)

    def _existing(
        self, sender: Sender
    ) -> tuple[set[tuple[str, str, str]], dict[str, LoadStats | Exception]]:
        """Which of our tables exist: one query for every database; when it fails, one per
        database, and the tables of a database that cannot be read fail (the others go on)."""
        config = self._link.config
        try:
            with translate(config, "read which cache tables exist"):
                return {r[:3] for r in sender.query(self._tables_query(with_bytes=False))}, {}
        except FulcrumError:
            pass
        existing: set[tuple[str, str, str]] = set()
        failed: dict[str, LoadStats | Exception] = {}
        for database in sorted({_parts(i.table)[0] for i in self._items.values()}):
            try:
                with translate(config, f"read which cache tables exist in {database}"):
                    query = self._tables_query(with_bytes=False, only=database)
                    existing |= {r[:3] for r in sender.query(query)}
            except FulcrumError as exc:
                for item in self._items.values():
                    if _parts(item.table)[0] == database:
                        failed[item.table.qualified] = exc
        return existing, failed

    def _tables_query(self, *, with_bytes: bool, only: str | None = None) -> str:
        """One query over every database's INFORMATION_SCHEMA (UNION ALL) for our tables."""
        tables: dict[str, dict[str, list[str]]] = {}
        for item in self._items.values():
            database, schema, name = _parts(item.table)
            if only is None or database == only:
                tables.setdefault(database, {}).setdefault(schema, []).append(name)
        selects = []
        extra = ', "BYTES"' if with_bytes else ""
        for database, schemas in sorted(tables.items()):
            where = " OR ".join(
                f'("TABLE_SCHEMA" = {literal(s)} AND "TABLE_NAME" IN '
                f"({', '.join(literal(n) for n in sorted(names))}))"
                for s, names in sorted(schemas.items())
            )
            selects.append(
                f'SELECT "TABLE_CATALOG", "TABLE_SCHEMA", "TABLE_NAME"{extra} '
                f"FROM {quote(database)}.INFORMATION_SCHEMA.TABLES WHERE {where}"
            )
        return " UNION ALL ".join(selects)

    def _sizes(self, sender: Sender, outcomes: dict[str, LoadStats | Exception]) -> None:
        """Fill in each loaded table's size from one INFORMATION_SCHEMA query (or estimate)."""
        loaded = {k: v for k, v in outcomes.items() if isinstance(v, LoadStats)}
        if not loaded:
            return
        sizes: dict[str, int] = {}
        try:
            for database, schema, name, size in sender.query(self._tables_query(with_bytes=True)):
                if size is not None:
                    sizes[f"{database}.{schema}.{name}"] = int(size)
        except Exception as exc:  # sizes are a report, not the load: estimate instead
            log.warning("cannot read cache table sizes: %s", self._link.config.scrub(str(exc)))
        for key, stats in loaded.items():
            size = sizes.get(key)
            if size is None or (size == 0 and stats.rows > 0):  # not reported (fakesnow: 0)
                outcomes[key] = LoadStats(
                    stats.rows, self._items[key].estimate, size_estimated=True
                )
            else:
                outcomes[key] = LoadStats(stats.rows, size)


def _overwrite(item: _Item) -> str:
    assert item.grain is not None and item.loaded_at is not None
    stamp = item.loaded_at.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
    return (
        f'INSERT OVERWRITE INTO {fqn(item.table)} ({_FRAME_COLS}, "GRAIN", "LOADED_AT") '
        f"SELECT {_FRAME_COLS}, {literal(item.grain.value)}, "
        f"TO_TIMESTAMP_NTZ({literal(stamp)}) FROM {BATCH_TABLE} "
        f'WHERE "TABLE_KEY" = {literal(item.table.qualified)}'
    )


def _number(value: Any) -> str:
    """A float as CSV (its shortest exact repr), NULL for a missing or NaN value."""
    if value is None:
        return _NULL
    number = float(value)
    return _NULL if number != number else repr(number)


def _text(value: Any) -> str:
    """A CSV field: a string enclosed in double quotes (doubled inside), NULL as ``\\N``."""
    if value is None or (isinstance(value, float) and value != value):
        return _NULL
    return '"' + str(value).replace('"', '""') + '"'
