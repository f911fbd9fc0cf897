"""The Snowflake cache target, on snowflake-connector-python (imported only when used).

A sink writes one tenant's tables (its database and schema) through a :class:`SnowflakeLink`
(link.py), the one connection of its destination (account, user, role, warehouse), shared by
every tenant loading there and opened once per run. Loads go in batches (batch.py): one staged
file and one COPY for all changed tables, each table replaced atomically by an ``INSERT
OVERWRITE`` (grants and history kept), the statements of many tables sent together.
:meth:`SnowflakeSink.replace` is a batch of one.

Credentials never leave this package: the config's repr hides them, and every connector error
is turned into one SinkError (RefusedError when Snowflake refuses the credentials) in
:func:`translate` (link.py), with any secret masked.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from fulcrum_sync.domain import Grain, SinkError
from fulcrum_sync.sinks.base import FRAME_COLUMNS, CacheRow, LoadStats
from fulcrum_sync.sinks.identifiers import CacheTable, cache_table_name, quote
from fulcrum_sync.sinks.snowflake.batch import SnowflakeBatch, fqn
from fulcrum_sync.sinks.snowflake.config import SnowflakeConfig
from fulcrum_sync.sinks.snowflake.link import SnowflakeLink, translate

if TYPE_CHECKING:
    import pandas as pd

_FRAME_COLS = ", ".join(f'"{c.upper()}"' for c in FRAME_COLUMNS)


class SnowflakeSink:
    """Cache tables in a Snowflake database and schema.

    :param config: validated connection settings.
    :param connect: builds a DB-API connection from ``config.connect_kwargs()``; default
        ``snowflake.connector.connect`` (tests may pass their own).
    :param link: a connection shared with other tenants' sinks of the same destination;
        default a link of its own.
    """

    target = "snowflake"

    def __init__(
        self,
        config: SnowflakeConfig,
        connect: Callable[..., Any] | None = None,
        link: SnowflakeLink | None = None,
    ) -> None:
        self._config = config
        self._link = link or SnowflakeLink(config, connect)

    @property
    def auth(self) -> str:
        """``password`` or ``key pair``."""
        return self._config.auth

    @property
    def destination(self) -> str:
        """The connection this sink loads through (sinks of one destination share it)."""
        return self._link.destination

    @property
    def _conn(self) -> Any:
        return self._link.conn

    def __repr__(self) -> str:
        return f"SnowflakeSink({self._config!r})"

    def table_for(self, tenant: str, metric: str, grain: Grain) -> CacheTable:
        """Return ``DB.SCHEMA.CACHE_<TENANT>_<METRIC>_<GRAIN>``; raise InputError if unsafe."""
        name = cache_table_name(tenant, metric, grain)
        quote(name, "cache table name")
        return CacheTable(name, f"{self._config.database}.{self._config.schema}.{name}")

    def open(self) -> None:
        """Connect (password or key pair), once per destination; raise RefusedError when
        Snowflake refuses the credentials, SinkError when it cannot be reached."""
        self._link.open()

    def ensure_table(self, table: CacheTable) -> None:
        """Create ``table`` if it does not exist."""
        batch = self.batch()
        try:
            batch.ensure(table)
            _raise_failed(batch.load(), table)
        finally:
            batch.close()

    def replace(
        self, table: CacheTable, frame: pd.DataFrame, grain: Grain, loaded_at: datetime
    ) -> LoadStats:
        """Make ``frame`` the table's contents: a batch of one (see :meth:`batch`)."""
        batch = self.batch()
        try:
            batch.add(table, frame, grain, loaded_at)
            return _raise_failed(batch.load(), table)
        finally:
            batch.close()

    def read(self, table: CacheTable) -> list[CacheRow] | None:
        """Return the table's rows (None when it does not exist)."""
        cfg = self._config
        with self._translate(f"read {table.qualified}"), self._cursor() as cur:
            cur.execute(
                f"SELECT COUNT(*) FROM {quote(cfg.database)}.INFORMATION_SCHEMA.TABLES "
                "WHERE TABLE_SCHEMA = %(schema)s AND TABLE_NAME = %(name)s",
                {"schema": cfg.schema, "name": table.name},
            )
            if not cur.fetchone()[0]:
                return None
            cur.execute(f"SELECT {_FRAME_COLS} FROM {fqn(table)}")
            rows = cur.fetchall()
        return [(_day(r[0]), r[1], r[2], float(r[3])) for r in rows]

    def batch(self) -> SnowflakeBatch:
        """Start a batch of tables of this destination: one staged file, one COPY, and the
        tables replaced together (sinks/snowflake/batch.py)."""
        if self._link.conn is None:
            raise SinkError("the Snowflake sink is not open: call open() first")
        return SnowflakeBatch(self._link)

    def close(self) -> None:
        """Close the (shared) connection, if open."""
        self._link.close()

    @contextlib.contextmanager
    def _cursor(self) -> Iterator[Any]:
        if self._conn is None:
            raise SinkError("the Snowflake sink is not open: call open() first")
        cur = self._conn.cursor()
        try:
            yield cur
        finally:
            with contextlib.suppress(Exception):
                cur.close()

    def _translate(self, action: str) -> contextlib.AbstractContextManager[None]:
        return translate(self._config, action)


def _day(value: Any) -> date:
    """A DATE column's value as a date (the connector may hand back a datetime or text)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    return value  # type: ignore[no-any-return]


def _raise_failed(outcomes: dict[str, LoadStats | Exception], table: CacheTable) -> LoadStats:
    outcome = outcomes.get(table.qualified)
    if isinstance(outcome, Exception):
        raise outcome
    return outcome if outcome is not None else LoadStats(0, None)
