"""The lock watchdog's own PostgreSQL session ends with its engine.

Each engine on PostgreSQL has a watchdog thread with a connection of its own (store/locks.py).
It used to end only after idling 10 s, engine disposed of or not: a process that opens and
disposes of engines one after another (the in-process CLI tests: three pytest workers ran
PostgreSQL out of its 100 connections, "sorry, too many clients already") kept a session per
engine for 10 s after each.
"""

from __future__ import annotations

import time
import uuid

import psycopg
import pytest
from sqlalchemy import text

from fulcrum_sync.store import locks
from fulcrum_sync.store.engine import open_engine


def _sessions(admin: psycopg.Connection[tuple[int]], name: str) -> int:
    row = admin.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (name,)
    ).fetchone()
    assert row is not None
    return int(row[0])


def _until(admin: psycopg.Connection[tuple[int]], name: str, wanted: int) -> int:
    """Wait (60 s at most) until ``name`` has ``wanted`` sessions; return how many it has."""
    deadline = time.monotonic() + 60
    while (now := _sessions(admin, name)) != wanted and time.monotonic() < deadline:
        time.sleep(0.02)
    return now


def test_disposing_of_an_engine_ends_its_watchdog_and_closes_its_session(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(locks, "IDLE_SECONDS", 1e9)  # only the disposal can end it here
    name = f"watched_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(pg_url.replace("+psycopg", ""), autocommit=True)
    engine = open_engine(f"{pg_url}&application_name={name}")
    try:
        for _ in range(2):  # the engine is usable again after its disposal, watched again
            with engine.connect() as conn:  # in use until the watchdog has its own session
                conn.execute(text("SELECT 1"))
                assert _until(admin, name, 2) == 2, "the watchdog never connected"
            engine.dispose()
            assert _until(admin, name, 0) == 0, "a session outlived its disposed engine"
    finally:
        engine.dispose()
        admin.close()
