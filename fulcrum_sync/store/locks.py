"""Watch this process's PostgreSQL sessions for lock waits: warn early, name the table.

A statement blocked by a lock says nothing until ``lock_timeout`` cancels it. A watchdog
thread asks ``pg_locks`` (on its own connection, once a second, only while connections are
checked out) which of our backends wait for a lock; after a few seconds it logs one
``warning`` per wait with the waiting work's log fields, the table and the holder. The
translate helper (``engine.translate_errors``) reads the last wait of its thread to name the
table when the lock times out. The thread ends, closing its connection, once no connection
has been in use for a while, or at once when the engine is disposed of.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, event

from fulcrum_sync.logs import bound_fields, current_fields

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
IDLE_SECONDS = 10.0  # no connection in use this long: the watchdog thread ends

_WAITS = """
SELECT l.pid, coalesce(l.relation::regclass::text, l.locktype), l.mode,
       extract(epoch FROM now() - l.waitstart), pg_blocking_pids(l.pid)
FROM pg_locks l WHERE NOT l.granted AND l.pid = ANY(%s)
"""


@dataclass(frozen=True, slots=True)
class LockWait:
    """A lock one of our sessions waits for."""

    table: str
    mode: str
    seconds: float
    holders: tuple[int, ...]


@dataclass(slots=True)
class _Session:
    thread: int
    fields: dict[str, Any]
    warned: bool = False


@dataclass(slots=True)
class LockWatch:
    """The watchdog of one engine; started by :func:`watch_locks`."""

    engine: Engine
    warn_after: float
    network: dict[str, int] = field(default_factory=dict)  # libpq keepalives (engine.py)
    sessions: dict[int, _Session] = field(default_factory=dict)  # backend pid -> who uses it
    waits: dict[int, LockWait] = field(default_factory=dict)  # thread -> its last wait
    lock: threading.Lock = field(default_factory=threading.Lock)
    busy: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    halt: threading.Event = field(default_factory=threading.Event)  # the thread's, to end it

    def checkout(self, dbapi_conn: Any, *_: Any) -> None:
        pid = _backend_pid(dbapi_conn)
        if pid is None:
            return
        me = threading.get_ident()
        with self.lock:
            self.sessions[pid] = _Session(me, current_fields())
            self.waits.pop(me, None)
            self.busy.set()
            if self.thread is None:
                self.halt = threading.Event()
                self.thread = threading.Thread(
                    target=self._run, args=(self.halt,), name="lock-watch", daemon=True
                )
                self.thread.start()

    def checkin(self, dbapi_conn: Any, *_: Any) -> None:
        pid = _backend_pid(dbapi_conn)
        with self.lock:
            self.sessions.pop(pid or -1, None)
            if not self.sessions:
                self.busy.clear()

    def disposed(self, _engine: Engine) -> None:
        """The engine was disposed of: end the thread now (a later checkout starts another)."""
        with self.lock:
            self.halt.set()
            self.thread = None

    def _run(self, halt: threading.Event) -> None:
        """Poll while our connections are in use; end (closing its own) after idling a while
        or when halted, so an engine nobody uses holds no thread and no connection."""
        conn: Any = None
        idle = 0.0
        while not halt.is_set():
            if not self.busy.is_set():
                idle += POLL_SECONDS
                with self.lock:
                    if idle > IDLE_SECONDS and not self.busy.is_set() and not halt.is_set():
                        self.thread = None
                        break
            else:
                idle = 0.0
                try:
                    conn = conn or self._connect()
                    self._poll(conn)
                except Exception:  # a watchdog never fails the work it watches
                    with contextlib.suppress(Exception):
                        conn.close()
                    conn = None
            halt.wait(POLL_SECONDS)
        with contextlib.suppress(Exception):
            conn.close()

    def _connect(self) -> Any:
        dialect = self.engine.dialect
        cargs, cparams = dialect.create_connect_args(self.engine.url)
        # Its own queries wait for no lock and take at most 5 s, whatever the work's limits.
        options = f"{cparams.get('options', '')} -c lock_timeout=0 -c statement_timeout=5000"
        cparams = {**cparams, "autocommit": True, "connect_timeout": 5, "options": options}
        cparams.update(self.network)  # a cut network ends its waits too
        return dialect.loaded_dbapi.connect(*cargs, **cparams)

    def _poll(self, conn: Any) -> None:
        with self.lock:
            pids = list(self.sessions)
        if not pids:
            return
        rows = conn.execute(_WAITS, (pids,)).fetchall()
        for pid, table, mode, seconds, holders in rows:
            wait = LockWait(str(table), str(mode), float(seconds or 0), tuple(holders or ()))
            with self.lock:
                session = self.sessions.get(pid)
                if session is None:
                    continue
                self.waits[session.thread] = wait
                warn = wait.seconds >= self.warn_after and not session.warned
                session.warned = session.warned or warn
            if warn:
                with bound_fields(**session.fields):
                    log.warning(
                        "waiting %.0f s for a lock on %s (%s) held by pid %s",
                        wait.seconds,
                        wait.table,
                        wait.mode,
                        ", ".join(map(str, wait.holders)) or "?",
                        extra={"table": wait.table, "wait_seconds": round(wait.seconds, 1)},
                    )


_watches: weakref.WeakKeyDictionary[Engine, LockWatch] = weakref.WeakKeyDictionary()


def watch_locks(
    engine: Engine, lock_seconds: float, network: dict[str, int] | None = None
) -> LockWatch:
    """Start watching ``engine``'s sessions for lock waits (PostgreSQL); warn after a few
    seconds (3, or half the lock timeout when that is shorter). ``network``: the libpq
    keepalive settings of the watchdog's own connection."""
    warn_after = min(3.0, lock_seconds / 2) if lock_seconds > 0 else 3.0
    watch = LockWatch(engine, warn_after, dict(network or {}))
    _watches[engine] = watch
    event.listen(engine, "checkout", watch.checkout)
    event.listen(engine, "checkin", watch.checkin)
    event.listen(engine, "engine_disposed", watch.disposed)
    return watch


def last_wait(engine: Engine, thread: int) -> LockWait | None:
    """The lock ``thread`` last waited for on ``engine`` (seen by the watchdog), if any."""
    watch = _watches.get(engine)
    if watch is None:
        return None
    with watch.lock:
        return watch.waits.get(thread)


def _backend_pid(dbapi_conn: Any) -> int | None:
    try:
        pid = dbapi_conn.info.backend_pid
    except Exception:  # a closed connection, or not psycopg
        return None
    return pid if isinstance(pid, int) and pid > 0 else None
