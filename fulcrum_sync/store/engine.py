"""Open the state database, keep its schema current, and translate its errors."""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
import weakref
import zlib
from collections.abc import Iterator
from importlib import resources
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError, SQLAlchemyError
from sqlalchemy.pool import NullPool, QueuePool

from fulcrum_sync.config import DatabaseLimits, mask_url
from fulcrum_sync.domain import InputError, StoreBusyError, StoreError
from fulcrum_sync.store.retry import is_disconnect, patiently, reconnecting, set_patience

__all__ = [
    "HEAD_REVISION",
    "DatabaseLimits",
    "current_revision",
    "is_disconnect",
    "normalize_url",
    "open_engine",
    "reading",
    "reconnecting",
    "serialize",
    "translate_errors",
    "upgrade",
]

log = logging.getLogger(__name__)

HEAD_REVISION = "0006"
MIGRATION_LOCK_ID = 0x46554C43  # "FULC": the advisory lock that serializes migrations


_limits: weakref.WeakKeyDictionary[Engine, DatabaseLimits] = weakref.WeakKeyDictionary()


def open_engine(
    url: str,
    *,
    workers: int = 1,
    migrate: bool = True,
    pooled: bool = False,
    limits: DatabaseLimits | None = None,
) -> Engine:
    """Return an engine for ``url``; create or migrate the schema when ``migrate``.

    Short commands use no pool (NullPool); jobs that run many transactions (``pooled``) and
    ``workers > 1`` get a small pool sized to their workers. A server that is away is waited
    for up to ``limits.retry_seconds``. ``postgres://`` and ``postgresql://`` mean psycopg 3.
    Raises InputError for an unusable URL or a database or role that does not exist, and
    StoreError when the database is unreachable.
    """
    limits = limits or DatabaseLimits()
    try:
        engine = _create(normalize_url(url), workers, pooled, limits)
    except (ImportError, ValueError, SQLAlchemyError) as exc:
        raise InputError(f"unusable database URL {mask_url(url)}: {_first_line(exc)}") from None
    _limits[engine] = limits
    set_patience(engine, seconds=limits.retry_seconds)
    patiently(engine, lambda: _connect(engine, migrate))
    if engine.dialect.name == "postgresql":
        from fulcrum_sync.store.locks import watch_locks

        network = network_args(engine.url, limits.dead_after_seconds)
        watch_locks(engine, limits.lock_seconds, network)
    return engine


def _connect(engine: Engine, migrate: bool) -> None:
    with translate_errors(engine, "connect to"):
        with engine.connect():
            pass
        if migrate and current_revision(engine) != HEAD_REVISION:
            upgrade(engine)


def normalize_url(url: str) -> str:
    """Return ``url`` with ``postgres://`` and ``postgresql://`` spelled as psycopg 3's."""
    parsed: URL = make_url(url)
    backend, _, driver = parsed.drivername.partition("+")
    if backend in ("postgres", "postgresql"):
        parsed = parsed.set(drivername=f"postgresql+{driver or 'psycopg'}")
        return parsed.render_as_string(hide_password=False)
    return url


def _create(url: str, workers: int, pooled: bool, limits: DatabaseLimits) -> Engine:
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
        kwargs["pool_use_lifo"] = True  # the connection just used is the one used next
    else:
        kwargs["poolclass"] = NullPool
    if url.startswith("postgresql"):
        options = " ".join(filter(None, [_url_options(url), _session_options(limits)]))
        kwargs["connect_args"] = {
            "connect_timeout": 10,
            "options": options,
            **network_args(url, limits.dead_after_seconds),
        }
    engine = create_engine(url, **kwargs)
    if is_sqlite:
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    elif kwargs["poolclass"] is QueuePool:
        _ping_when_idle(engine)
    return engine


PING_AFTER_IDLE_SECONDS = 1.0


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection on checkout when it sat idle in the pool for a while.

    ``pool_pre_ping`` pings on every checkout: a round trip per transaction, a fifth of a
    pattern run's waits on PostgreSQL. A connection the server dropped while it sat idle
    (a restart, an idle timeout) is still replaced here before use; one dropped between two
    uses in quick succession fails its transaction, which ``reconnecting`` (store/retry.py)
    runs again on a new connection (SQLAlchemy then replaces the whole pool).
    """

    def checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    def checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop("idle_since", None)
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:  # the pool connects anew
            raise DisconnectionError(f"a pooled connection was lost: {exc}") from exc

    event.listen(engine, "checkin", checkin)
    event.listen(engine, "checkout", checkout)


def _session_options(limits: DatabaseLimits) -> str:
    """Every PostgreSQL session's lock and statement timeouts, and the keepalives of the
    server's side of it (libpq ``options``; see :func:`keepalives`)."""
    lock_ms, statement_ms = int(limits.lock_seconds * 1000), int(limits.statement_seconds * 1000)
    options = f"-c lock_timeout={lock_ms} -c statement_timeout={statement_ms}"
    server = keepalives(limits.dead_after_seconds, server=True)
    return " ".join([options, *(f"-c {name}={value}" for name, value in server.items())])


def keepalives(dead_after: float, *, server: bool = False) -> dict[str, int]:
    """TCP keepalives and ``tcp_user_timeout`` that declare a silent connection lost after
    about ``dead_after`` seconds (0: the system's defaults, hours).

    A cut network (packets dropped, no reset) would leave a session waiting on its socket
    forever: a job that never ends, deaf to SIGTERM while it waits. Keepalive probes end an
    idle wait (after a third of the time, then three probes a sixth apart), and
    ``tcp_user_timeout`` ends one whose sent data goes unacknowledged; the lost connection
    then fails like any other and the run waits for the database (``retry_seconds``). A live
    server's kernel answers both however long its query runs. ``server``: the same as session
    settings of the server's side, so that a session whose client vanished behind a cut does
    not keep its transaction's locks for the server's default two hours.
    """
    if dead_after <= 0:
        return {}
    idle, interval = max(1, round(dead_after / 3)), max(1, round(dead_after / 6))
    prefix = "tcp_keepalives_" if server else "keepalives_"
    settings = {} if server else {"keepalives": 1}
    settings.update({f"{prefix}idle": idle, f"{prefix}interval": interval, f"{prefix}count": 3})
    settings["tcp_user_timeout"] = int(dead_after * 1000)
    return settings


def network_args(url: str | URL, dead_after: float) -> dict[str, int]:
    """The client side's :func:`keepalives` of every PostgreSQL connection, less the ones
    the URL sets itself."""
    query = make_url(url).query if isinstance(url, str) else url.query
    return {k: v for k, v in keepalives(dead_after).items() if k not in query}


def _url_options(url: str) -> str:
    """The libpq ``options`` the URL itself sets (a search_path), kept beside ours."""
    value = make_url(url).query.get("options", "")
    return " ".join(value) if isinstance(value, tuple) else value


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


@contextlib.contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection for reads that need no transaction: on PostgreSQL it runs in autocommit
    (no BEGIN and ROLLBACK round trips around one statement; each statement still sees one
    snapshot). SQLite reads as before."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn


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
    """Turn SQLAlchemy and driver errors into ours, naming the (password-masked) database.

    A database, role or password the server refuses is InputError (exit 2, with the fix); a
    lock not granted or a statement cancelled in time is StoreBusyError naming the table and
    the wait (that context fails, the run goes on); anything else is StoreError.
    """
    dbapi_error: type[Exception] = getattr(engine.dialect.loaded_dbapi, "Error", SQLAlchemyError)
    try:
        yield
    except (SQLAlchemyError, dbapi_error) as exc:  # the driver's own errors come from COPY
        detail = _first_line(exc)
        if engine.url.password:
            detail = detail.replace(str(engine.url.password), "***")
        configuration = _configuration_problem(engine, detail)
        if configuration:
            raise InputError(configuration) from None
        from fulcrum_sync.store.endpoint import database_address, database_endpoint

        busy = _busy(engine, exc, detail)
        if busy:
            raise StoreBusyError(busy, endpoint=database_address(engine.url)) from exc
        where = database_endpoint(engine.url)
        message = f"{where}: cannot {action} the state database: {detail}"
        raise StoreError(message, endpoint=database_address(engine.url)) from exc


_FIX = "fix FULCRUM_SYNC_DATABASE_URL"
_REFUSALS = (
    (
        re.compile(r'database "([^"]+)" does not exist'),
        "database '{}' does not exist on {}: create it or " + _FIX,
    ),
    (
        re.compile(r'role "([^"]+)" does not exist'),
        "role '{}' does not exist on {}: create it or " + _FIX,
    ),
    (
        re.compile(r'password authentication failed for user "([^"]+)"'),
        "password authentication failed for user '{}' on {}: " + _FIX,
    ),
)


def _configuration_problem(engine: Engine, detail: str) -> str | None:
    """The one-line fix when the server refused our database, role or password."""
    for pattern, template in _REFUSALS:
        found = pattern.search(detail)
        if found:
            where = f"{engine.url.host or 'localhost'}:{engine.url.port or 5432}"
            return template.format(found.group(1), where)
    if engine.dialect.name == "sqlite" and "unable to open database file" in detail:
        return (
            f"cannot open the SQLite file {engine.url.database!r}: its folder does not exist "
            "or is not writable; fix FULCRUM_SYNC_DATABASE_URL"
        )
    return None


_TABLE_IN_SQL = re.compile(
    r"\b(?:INTO|UPDATE|FROM|TABLE)\s+(?:ONLY\s+)?\"?([A-Za-z_][A-Za-z0-9_]*)", re.I
)


def _busy(engine: Engine, exc: BaseException, detail: str) -> str | None:
    """Name the table and the wait when a lock was not granted or a statement was cancelled."""
    orig = getattr(exc, "orig", None) or exc
    sqlstate = str(getattr(orig, "sqlstate", "") or "")
    if sqlstate not in ("55P03", "57014"):
        return None
    from fulcrum_sync.store.locks import last_wait

    limits = _limits.get(engine, DatabaseLimits())
    wait = last_wait(engine, threading.get_ident())
    statement = str(getattr(exc, "statement", "") or "")
    found = _TABLE_IN_SQL.search(statement)
    table = wait.table if wait else (found.group(1) if found else "a table")
    if sqlstate == "55P03":
        held = ", ".join(map(str, wait.holders)) if wait else ""
        holders = f"; held by pid {held}" if held else ""
        return (
            f"lock on {table} not granted within {limits.lock_seconds:g} s "
            f"(FULCRUM_SYNC_DATABASE_LOCK_TIMEOUT_SECONDS){holders}"
        )
    if "statement timeout" in detail:
        return (
            f"statement on {table} cancelled after {limits.statement_seconds:g} s "
            "(FULCRUM_SYNC_DATABASE_STATEMENT_TIMEOUT_SECONDS)"
        )
    return f"statement on {table} cancelled: {detail}"


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return text[0] if text else type(orig).__name__
