"""A moment in a running ``fulcrum-sync`` process that does not depend on the machine's speed.

A process test sends SIGTERM or SIGKILL "after N run keys succeeded, before the run ends".
Polling for N and then signalling let a fast (or a loaded) machine finish the whole run in
between: the test then failed with "sync finished before SIGTERM could be sent". Here the
poller holds the state database's writers back (SQLite: its write lock; PostgreSQL: the
``run_items`` table locked EXCLUSIVE) while it counts, and lets them go only in short
windows: once N keys succeeded it keeps holding them, so the process cannot finish until
the block ends, and it is signalled at a moment of its work (waiting to write).
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
WINDOW = 0.15  # writers go free this long between counts: longer than SQLite's busy sleeps


@contextmanager
def held_after(url: str, proc: subprocess.Popen[Any], wanted: int) -> Iterator[int]:
    """Yield how many run keys succeeded once ``wanted`` did (or the process ended), with
    the process's writes held back until the block ends (see the module's doc)."""
    sqlite = url.startswith("sqlite")
    conn: Any = (
        sqlite3.connect(url.split("///", 1)[1], isolation_level=None, timeout=60)
        if sqlite
        else psycopg.connect(  # named apart from the process's sessions (a test ends those)
            url.replace("+psycopg", ""), autocommit=True, application_name="process-moments"
        )
    )
    deadline = time.monotonic() + 180
    try:
        while True:
            conn.execute("BEGIN IMMEDIATE" if sqlite else "BEGIN")
            if not sqlite:
                conn.execute("LOCK TABLE run_items IN EXCLUSIVE MODE")
            done = int(conn.execute(_COUNT).fetchone()[0])
            if done >= wanted or proc.poll() is not None or time.monotonic() > deadline:
                break
            conn.execute("COMMIT")
            time.sleep(WINDOW)
        yield done
    finally:
        conn.execute("ROLLBACK")
        conn.close()
