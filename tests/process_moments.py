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

_COUNT = (
    "SELECT count(*) FILTER (WHERE status = 'succeeded'),"
    " count(*) FILTER (WHERE status = 'running') FROM run_items"
)
_TRY = 0.001  # seconds between tries: for the lock, and for one more stored key


def _count(conn: Any) -> tuple[int, int]:
    """How many run keys succeeded, and how many are claimed (running) now."""
    done, running = conn.execute(_COUNT).fetchone()
    return int(done), int(running)


def _moved(seen: tuple[int, int], now: tuple[int, int], claimed: int) -> bool:
    """Whether the process stored a key since ``seen`` (or claimed one, when claims count)."""
    return now[0] != seen[0] or (claimed > 0 and now[1] != seen[1])


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
def held_after(
    url: str, proc: subprocess.Popen[Any], wanted: int, claimed: int = 0
) -> Iterator[int]:
    """Yield how many run keys succeeded once ``wanted`` did (or the process ended), with
    the process's writes held back until the block ends (see the module's doc).

    ``claimed`` also waits for that many keys claimed (running) at the held moment: a
    worker between two keys holds none, and a test of what a killed process leaves claimed
    needs one that does."""
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
            done, running = seen = _count(conn)
            if (done >= wanted and running >= claimed) or proc.poll() is not None:
                break
            if time.monotonic() > deadline:
                break
            conn.execute("COMMIT")
            # The process writes until a key is stored (or, when claims count, claimed): a
            # read needs no lock.
            while not _moved(seen, _count(conn), claimed) and proc.poll() is None:
                if time.monotonic() > deadline:
                    break
                time.sleep(_TRY)
        yield done
    finally:
        conn.execute("ROLLBACK")
        conn.close()
