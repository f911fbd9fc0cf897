"""Open the state database, keep its schema current, and translate its errors."""

from __future__ import annotations

import contextlib
import functools
import logging
import zlib
from collections.abc import Callable, Iterator
from importlib import resources
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.pool import NullPool, QueuePool

from fulcrum_sync.config import mask_url
from fulcrum_sync.domain import InputError, StoreError

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")

HEAD_REVISION = "0003"
MIGRATION_LOCK_ID = 0x46554C43  # "FULC": the advisory lock that serializes migrations


def open_engine(
    url: str, *, workers: int = 1, migrate: bool = True, pooled: bool = False
) -> Engine:
    """Return an engine for ``url``; create or migrate the schema when ``migrate``.

    Short commands use no pool (NullPool); jobs that run many transactions (``pooled``) and
    ``workers > 1`` get a small pool sized to their workers.
    Raises InputError for an unusable URL and StoreError when the database is unreachable.
    """
    try:
        engine = _create(url, workers, pooled)
    except (ImportError, ValueError, SQLAlchemyError) as exc:
        raise InputError(f"unusable database URL {mask_url(url)}: {_first_line(exc)}") from None
    with translate_errors(engine, "connect to"):
        with engine.connect():
            pass
        if migrate and current_revision(engine) != HEAD_REVISION:
            upgrade(engine)
    return engine


def _create(url: str, workers: int, pooled: bool) -> Engine:
    is_sqlite = url.startswith("sqlite")
    kwargs: dict[str, Any] = {}
    if is_sqlite:
        kwargs["connect_args"] = {"timeout": 60, "check_same_thread": False}
    if workers > 1 or is_sqlite or pooled:
        # SQLite always pools: closing the last connection to a WAL file checkpoints it, which
        # would cost milliseconds per transaction. PostgreSQL pools for jobs and workers:
        # a new connection per transaction costs more than the work (42 vs 6 ms a context).
        kwargs["poolclass"] = QueuePool
        kwargs["pool_size"] = workers + 2
        kwargs["max_overflow"] = 2
    else:
        kwargs["poolclass"] = NullPool
    if url.startswith("postgresql"):
        kwargs["connect_args"] = {"connect_timeout": 10}
        kwargs["pool_pre_ping"] = True  # a connection the server dropped is replaced
    engine = create_engine(url, **kwargs)
    if is_sqlite:
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy own transactions (pysqlite's own BEGIN handling is off) and use WAL so
    # readers never block the writer.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=60000")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    # BEGIN IMMEDIATE takes the write lock up front, so concurrent writers wait on busy_timeout
    # instead of failing with "database is locked" when a read transaction upgrades.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def current_revision(engine: Engine) -> str | None:
    """Return the schema's Alembic revision, or None for an empty database."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        row = conn.exec_driver_sql("SELECT version_num FROM alembic_version").first()
        return row[0] if row else None


def upgrade(engine: Engine) -> str:
    """Create or migrate the schema to the newest revision; return that revision."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option(
        "script_location", str(resources.files("fulcrum_sync").joinpath("store", "migrations"))
    )
    with translate_errors(engine, "migrate"), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Processes starting together (shards of one backfill) migrate one at a time;
            # the later ones find the schema current and do nothing.
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})")
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    return HEAD_REVISION


def serialize(conn: Connection, name: str) -> None:
    """Make concurrent transactions doing ``name`` run one at a time (held until commit).

    PostgreSQL takes a transaction-scoped advisory lock; SQLite transactions already begin
    IMMEDIATE, which serializes writers.
    """
    if conn.dialect.name == "postgresql":
        key = zlib.crc32(name.encode()) & 0x7FFFFFFF
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID}, {key})")


@contextlib.contextmanager
def translate_errors(engine: Engine, action: str) -> Iterator[None]:
    """Turn SQLAlchemy errors into StoreError naming the (password-masked) database."""
    dbapi_error: type[Exception] = getattr(engine.dialect.loaded_dbapi, "Error", SQLAlchemyError)
    try:
        yield
    except (SQLAlchemyError, dbapi_error) as exc:  # the driver's own errors come from COPY
        where = engine.url.render_as_string(hide_password=True)
        detail = _first_line(exc)
        if engine.url.password:
            detail = detail.replace(str(engine.url.password), "***")
        raise StoreError(f"cannot {action} the state database {where}: {detail}") from exc


_DISCONNECT_MARKERS = (
    "terminating connection",
    "server closed the connection",
    "connection is closed",
    "connection is lost",
    "the connection is lost",
    "consuming input failed",
    "connection already closed",
    "ssl connection has been closed",
)


def is_disconnect(engine: Engine, error: BaseException | None) -> bool:
    """True when ``error`` means the database connection was lost (not a failed statement)."""
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    orig = getattr(error, "orig", None) or error
    operational = getattr(engine.dialect.loaded_dbapi, "OperationalError", None)
    if operational is None or not isinstance(orig, operational):
        return False
    sqlstate = str(getattr(orig, "sqlstate", "") or "")
    if sqlstate.startswith(("08", "57P0")):
        return True
    text = str(orig).lower()
    return any(marker in text for marker in _DISCONNECT_MARKERS)


def reconnecting(func: Callable[Concatenate[Engine, P], R]) -> Callable[Concatenate[Engine, P], R]:
    """Run ``func(engine, ...)`` again once when its connection was lost mid-transaction.

    Every store function runs whole transactions, so a second run starts clean on a new
    connection (the pool pre-pings, so dead idle connections are replaced on checkout). A
    second loss in a row is a StoreError: the database is gone, not blipping.
    """

    @functools.wraps(func)
    def wrapper(engine: Engine, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(engine, *args, **kwargs)
        except StoreError as exc:
            if not is_disconnect(engine, exc.__cause__):
                raise
            log.warning("lost the state database connection (%s); reconnecting", exc)
            return func(engine, *args, **kwargs)

    return wrapper


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return text[0] if text else type(orig).__name__
