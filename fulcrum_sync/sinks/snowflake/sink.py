"""The Snowflake cache target, on snowflake-connector-python (imported only when used).

A load replaces a table's contents atomically::

    CREATE TABLE IF NOT EXISTS "DB"."SCHEMA"."CACHE_..."   -- first load only
    CREATE OR REPLACE TEMPORARY TABLE "CACHE_...__STAGE"   -- this session only
    write_pandas(...) into the stage                        -- PUT + COPY INTO
    BEGIN; DELETE FROM target; INSERT INTO target SELECT ... FROM stage; COMMIT
    DROP TABLE IF EXISTS stage

The DELETE and the INSERT commit together, so readers see the old rows until the commit and
the new ones after it. Unlike ``ALTER TABLE ... SWAP WITH`` or ``CREATE OR REPLACE ... CLONE``
this keeps the table itself (its grants, comments and Time Travel history), and it is what
fakesnow, which the tests run on, supports. ``write_pandas`` runs DDL (a temporary stage and
file format), which would commit an open transaction: that is why it loads the stage first.

Credentials never leave this module: the config's repr hides them, and every connector error
is turned into one SinkError at :meth:`SnowflakeSink._translate` with any secret masked.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fulcrum_sync.domain import FulcrumError, Grain, RefusedError, SinkError
from fulcrum_sync.sinks.base import FRAME_COLUMNS, LoadStats, estimate_bytes
from fulcrum_sync.sinks.identifiers import CacheTable, cache_table_name, quote
from fulcrum_sync.sinks.snowflake.config import SnowflakeConfig

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

STAGE_SUFFIX = "__STAGE"
_COLUMNS_DDL = (
    '"DATE" DATE NOT NULL, "DIMENSION_NAME" VARCHAR, "DIMENSION_SLICE" VARCHAR, '
    '"VALUE" FLOAT NOT NULL, "GRAIN" VARCHAR NOT NULL, "LOADED_AT" TIMESTAMP_NTZ NOT NULL'
)
_STAGE_DDL = '"DATE" DATE, "DIMENSION_NAME" VARCHAR, "DIMENSION_SLICE" VARCHAR, "VALUE" FLOAT'
_FRAME_COLS = ", ".join(f'"{c.upper()}"' for c in FRAME_COLUMNS)

#: Connector error numbers that mean Snowflake refused who we are (a wrong password or key,
#: a locked or disabled user, a role not granted): configuration, never retried (exit 2).
REFUSED_ERRNOS = frozenset({390100, 390101, 390102, 390144, 390186, 390189, 390201})
_REFUSED_TEXT = ("incorrect username or password", "jwt token is invalid")


def is_refused(exc: BaseException) -> bool:
    """True when a connector error says Snowflake refused our credentials."""
    errno = getattr(exc, "errno", None)
    if isinstance(errno, int) and errno in REFUSED_ERRNOS:
        return True
    return any(text in str(exc).lower() for text in _REFUSED_TEXT)


def _default_connect(**kwargs: Any) -> Any:
    import snowflake.connector  # lazy: the connector takes a while to import

    return snowflake.connector.connect(**kwargs)


class SnowflakeLink:
    """One connection to a Snowflake destination (account, user, role, warehouse), opened on
    first use and shared by the sinks of every tenant that loads there.

    :param config: the settings it connects with (the first tenant's, for a shared link).
    :param connect: builds a DB-API connection from ``config.connect_kwargs()``.
    """

    def __init__(self, config: SnowflakeConfig, connect: Callable[..., Any] | None = None) -> None:
        self.config = config
        self._connect = connect or _default_connect
        self.conn: Any = None

    @property
    def destination(self) -> str:
        return self.config.destination

    def open(self) -> None:
        """Connect once; raise RefusedError (credentials refused) or SinkError."""
        if self.conn is not None:
            return
        cfg = self.config
        log.debug("connecting to %s (%s)", cfg.destination, cfg.auth)
        with translate(cfg, f"connect to Snowflake account {cfg.account} as {cfg.user}", True):
            self.conn = self._connect(**cfg.connect_kwargs())

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()


@contextlib.contextmanager
def translate(config: SnowflakeConfig, action: str, connecting: bool = False) -> Iterator[None]:
    """Turn every error of the driver stack into SinkError (RefusedError for refused
    credentials while connecting), with secrets masked.

    Anything raised under the connector (its errors, network and pyarrow errors, and what
    fakesnow lets through) is a failure of the target, so all of it is translated here.
    """
    try:
        yield
    except FulcrumError:
        raise
    except Exception as exc:
        text = str(exc).strip()
        first = text.splitlines()[0] if text else ""
        detail = config.scrub(first or type(exc).__name__)
        error: FulcrumError
        if connecting and is_refused(exc):
            error = RefusedError(
                f"Snowflake refused the credentials: cannot {action}: {detail} "
                f"(check {config.hint})"
            )
        else:
            error = SinkError(f"cannot {action}: {detail}")
        if config.scrub(text) != text:
            raise error from None  # the driver echoed a secret: do not chain it
        raise error from exc


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
        quote(name + STAGE_SUFFIX, "cache table name")
        return CacheTable(name, f"{self._config.database}.{self._config.schema}.{name}")

    def open(self) -> None:
        """Connect (password or key pair), once per destination; raise RefusedError when
        Snowflake refuses the credentials, SinkError when it cannot be reached."""
        self._link.open()

    def ensure_table(self, table: CacheTable) -> None:
        """Create ``table`` if it does not exist."""
        with self._translate(f"create {table.qualified}"), self._cursor() as cur:
            cur.execute(f"CREATE TABLE IF NOT EXISTS {self._fqn(table)} ({_COLUMNS_DDL})")

    def replace(
        self, table: CacheTable, frame: pd.DataFrame, grain: Grain, loaded_at: datetime
    ) -> LoadStats:
        """Stage ``frame`` with write_pandas, then swap it in with one transaction."""
        from snowflake.connector.pandas_tools import write_pandas

        target, stage_name = self._fqn(table), table.name + STAGE_SUFFIX
        stage = quote(stage_name)
        stamp = loaded_at.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
        with self._translate(f"load {table.qualified}"), self._cursor() as cur:
            cur.execute(f"CREATE TABLE IF NOT EXISTS {target} ({_COLUMNS_DDL})")
            cur.execute(f"CREATE OR REPLACE TEMPORARY TABLE {stage} ({_STAGE_DDL})")
            try:
                if not frame.empty:
                    upper = frame[list(FRAME_COLUMNS)].rename(columns=str.upper)
                    ok, _chunks, staged, _ = write_pandas(
                        self._conn, upper, stage_name, quote_identifiers=True
                    )
                    if not ok or staged != len(frame):
                        raise SinkError(
                            f"cannot load {table.qualified}: staged {staged} of {len(frame)} rows"
                        )
                cur.execute("BEGIN")
                try:
                    cur.execute(f"DELETE FROM {target}")
                    cur.execute(
                        f'INSERT INTO {target} ({_FRAME_COLS}, "GRAIN", "LOADED_AT") '
                        f"SELECT {_FRAME_COLS}, %(grain)s, TO_TIMESTAMP_NTZ(%(loaded_at)s) "
                        f"FROM {stage}",
                        {"grain": grain.value, "loaded_at": stamp},
                    )
                    cur.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(Exception):
                        cur.execute("ROLLBACK")
                    raise
            finally:
                with contextlib.suppress(Exception):
                    cur.execute(f"DROP TABLE IF EXISTS {stage}")
            cur.execute(f"SELECT COUNT(*) FROM {target}")
            rows = int(cur.fetchone()[0])
            size = self._size(cur, table)
        if size is None or (size == 0 and rows > 0):  # not reported (fakesnow says 0)
            return LoadStats(rows, estimate_bytes(frame, grain), size_estimated=True)
        return LoadStats(rows, size)

    def close(self) -> None:
        """Close the (shared) connection, if open."""
        self._link.close()

    def _fqn(self, table: CacheTable) -> str:
        cfg = self._config
        return ".".join((quote(cfg.database), quote(cfg.schema), quote(table.name)))

    def _size(self, cur: Any, table: CacheTable) -> int | None:
        cur.execute(
            f"SELECT BYTES FROM {quote(self._config.database)}.INFORMATION_SCHEMA.TABLES "
            "WHERE TABLE_SCHEMA = %(schema)s AND TABLE_NAME = %(name)s",
            {"schema": self._config.schema, "name": table.name},
        )
        row = cur.fetchone()
        return None if row is None or row[0] is None else int(row[0])

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
