"""Run keys are locked in the order of their keys by every statement that waits for them
(PostgreSQL): a process's lease renewal and its own completion of several keys (a batch of
contexts, a context's pattern keys) never deadlock. Seen once under load, as "deadlock
detected" while a sync stored pattern results (test_run_key_processes)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import Engine, event, select, text

from fulcrum_sync.store import leases, runs
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import open_engine
from fulcrum_sync.store.runs import KeyDone, RunItem

OWNER = "host:1:run"
DAY = date(2025, 7, 1)


def _item(key: str) -> RunItem:
    return RunItem(key, "pattern", "day", DAY, "acme", "revenue", pattern=key)


@pytest.fixture
def pg(pg_url: str) -> Iterator[Engine]:
    engine = open_engine(pg_url)
    yield engine
    engine.dispose()


def _deadlocks(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
            ).scalar_one()
        )


def _wait_for_a_lock_wait(engine: Engine, query_part: str) -> None:
    """Until a session whose query contains ``query_part`` waits for a lock (30 s at most)."""
    sql = text(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND datname = current_database() AND query LIKE :q"
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if conn.execute(sql, {"q": f"%{query_part}%"}).scalar_one():
                return
        time.sleep(0.02)
    raise AssertionError(f"no session waited for a lock with {query_part!r}")


def test_a_lease_renewal_waits_for_a_completion_without_a_deadlock(pg: Engine) -> None:
    # Stored in the other order than their keys: a scan meets "k:b" first.
    runs.ensure_items(pg, [_item("k:b"), _item("k:a")])
    for key in ("k:b", "k:a"):
        assert runs.claim(pg, key, owner=OWNER, run_id="r", lease_seconds=60) is runs.Claim.CLAIMED
    before = _deadlocks(pg)
    errors: list[BaseException] = []

    def renew() -> None:
        try:
            leases.renew_leases(pg, OWNER, 120)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    with pg.connect() as conn, conn.begin():  # the work completes "k:a", then "k:b"
        runs.complete_all_in(conn, [KeyDone("k:a", OWNER, succeeded=True)])
        renewer = threading.Thread(target=renew)
        renewer.start()
        _wait_for_a_lock_wait(pg, "lease_expires_at")  # the renewal waits for "k:a"
        runs.complete_all_in(conn, [KeyDone("k:b", OWNER, succeeded=True)])
    renewer.join(60)
    assert not renewer.is_alive() and errors == []
    assert _deadlocks(pg) == before
    with pg.connect() as conn:
        statuses = dict(conn.execute(select(t.run_items.c.run_key, t.run_items.c.status)).all())
    assert statuses == {"k:a": "succeeded", "k:b": "succeeded"}


def test_keys_are_completed_in_the_order_of_their_keys(engine: Engine) -> None:
    keys = ["k:c", "k:a", "k:b"]
    runs.ensure_items(engine, [_item(k) for k in keys])
    for key in keys:
        runs.claim(engine, key, owner=OWNER, run_id="r", lease_seconds=60)
    seen: list[Any] = []

    def spy(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool):
        if statement.lstrip().upper().startswith("UPDATE RUN_ITEMS") and many:
            seen.extend(parameters)

    event.listen(engine, "before_cursor_execute", spy)
    try:
        with engine.begin() as conn:
            done = [KeyDone(k, OWNER, succeeded=True) for k in keys]
            assert runs.complete_all_in(conn, done) == 3
    finally:
        event.remove(engine, "before_cursor_execute", spy)
    order = [p["key"] if isinstance(p, dict) else next(v for v in p if v in keys) for p in seen]
    assert order == sorted(keys)
