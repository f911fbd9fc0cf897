"""A moment in a running ``fulcrum-sync`` process that does not depend on the machine's speed.

A process test sends SIGTERM or SIGKILL "after N run keys succeeded, before the run ends".
Polling for N and then signalling let a fast (or a loaded) machine finish the whole run in
between: the test then failed with "sync finished before SIGTERM could be sent". Here the
poller holds the state database's writers back (SQLite: its write lock; PostgreSQL: the
``run_items`` table locked EXCLUSIVE) while it counts, and lets them go only until one more
key is stored: once N keys succeeded it keeps holding them, so the process cannot finish
until the block ends, and it is signalled at a moment of its work (waiting to write).

Its own lock is taken by retrying every millisecond, not through SQLite's busy handler:
that one sleeps up to 100 ms between tries, and a process writing transaction after
transaction (two workers) kept the poller out until it had finished (seen once beside two
CPU burners: 60 of 60 keys done before the moment).
"""

from __future__ import annotations

import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

_COUNT = "SELECT count(*) FROM run_items WHERE status = 'succeeded'"
_TRY = 0.001  # seconds between tries: for the lock, and for one more stored key


def _count(conn: Any) -> int:
    return int(conn.execute(_COUNT).fetchone()[0])


def _hold(conn: Any, sqlite: bool, deadline: float) -> None:
    """Take the writers' lock (on SQLite, retrying until it is free)."""
    if not sqlite:
        conn.execute("BEGIN")
        conn.execute("LOCK TABLE run_items IN EXCLUSIVE MODE")  # waits in PostgreSQL's queue
        return
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError:  # locked: a write of the process is under way
            if time.monotonic() > deadline:
                raise
            time.sleep(_TRY)


@contextmanager
def held_after(url: str, proc: subprocess.Popen[Any], wanted: int) -> Iterator[int]:
    """Yield how many run keys succeeded once ``wanted`` did (or the process ended), with
    the process's writes held back until the block ends (see the module's doc)."""
    sqlite = url.startswith("sqlite")
    conn: Any = (
        sqlite3.connect(url.split("///", 1)[1], isolation_level=None, timeout=0)
        if sqlite
        else psycopg.connect(  # named apart from the process's sessions (a test ends those)
            url.replace("+psycopg", ""), autocommit=True, application_name="process-moments"
        )
    )
    deadline = time.monotonic() + 180
    try:
        while True:
            _hold(conn, sqlite, deadline)
            done = _count(conn)
            if done >= wanted or proc.poll() is not None or time.monotonic() > deadline:
                break
            conn.execute("COMMIT")
            # The process writes until one more key is stored (a read needs no lock).
            while _count(conn) == done and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(_TRY)
        yield done
    finally:
        conn.execute("ROLLBACK")
        conn.close()
