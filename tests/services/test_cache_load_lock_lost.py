"""A cache load's hold ends only after its record, and a hold lost mid-batch (its lock
connection terminated by ``pg_terminate_backend``) loads and records nothing more as if held.

One process (this test's loader) beside another (the ``other`` engine): the moment is chosen
by the sink (its ``open`` or ``replace`` acts), never by a sleep. Whatever happened, the next
plain run loads what needs it and the cache tables equal the state.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, event, text
from test_cache_load_service import SETTINGS, SpySink

from fulcrum_sync.catalog import ContextDef
from fulcrum_sync.domain import Grain, SinkError
from fulcrum_sync.services.cache import destination
from fulcrum_sync.services.cache import load as cache_load
from fulcrum_sync.services.contexts.selection import select_contexts
from fulcrum_sync.sinks.identifiers import CacheTable
from fulcrum_sync.store.cache import (
    CacheLoadRecord,
    read_cache_frame,
    read_cache_loads,
    record_cache_load,
)
from fulcrum_sync.store.cache_claims import hold_loads

REVENUE = (1, "new_revenue", "day")
ORDERS = (1, "orders", "day")
# The advisory locks granted in this database (the loads held), and who holds them.
HOLDERS = text(
    "SELECT DISTINCT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


def terminate_the_holder(other: Engine) -> None:
    """End the session holding this database's cache loads, as an operator would, and wait
    (on ``pg_stat_activity``) until it is gone."""
    with other.connect() as conn:
        pids = conn.execute(HOLDERS).scalars().all()
        assert len(pids) == 1, pids  # the loader's lock connection, and only it
        assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pids[0]}).scalar()
    gone = text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with other.connect() as conn:
            if not conn.execute(gone, {"p": pids[0]}).scalar_one():
                return
        time.sleep(0.02)
    raise AssertionError(f"the terminated session {pids[0]} is still there")


class ActingSink(SpySink):
    """The spy sink running ``at_open`` when opened and ``at_replace`` at its first replace."""

    def __init__(
        self,
        engine: Engine,
        at_open: Callable[[], None] | None = None,
        at_replace: Callable[[], None] | None = None,
        fail_open: Exception | None = None,
    ) -> None:
        super().__init__(engine)
        self.at_open, self.at_replace, self.fail_open = at_open, at_replace, fail_open

    def open(self) -> None:
        if self.at_open is not None:
            self.at_open()
        if self.fail_open is not None:
            raise self.fail_open
        super().open()

    def replace(
        self, table: CacheTable, frame: pd.DataFrame, grain: Grain, loaded_at: datetime
    ) -> Any:
        act, self.at_replace = self.at_replace, None
        if act is not None:
            act()
        return super().replace(table, frame, grain, loaded_at)


def _contexts(engine: Engine) -> list[ContextDef]:
    chosen = select_contexts(engine, SETTINGS, Grain.DAY, "acme", None, discover_first=False)
    return [c for c in chosen if c.metric.metric_id in ("new_revenue", "orders")]


def _sync_load(engine: Engine, sink: SpySink) -> dict[str, Any]:
    """Load the two contexts as ``sync --cache-load`` does (its loader, one batch)."""
    loader = cache_load.CacheLoader(engine, SETTINGS, sink, Grain.DAY)
    try:
        contexts = _contexts(engine)
        loader.prepare(contexts)
        return loader.load_many(contexts)
    finally:
        loader.close()


def _records(engine: Engine) -> dict[str, CacheLoadRecord]:
    return {r.metric_id: r for r in read_cache_loads(engine, "day")}


def _success(metric: str, version: int) -> CacheLoadRecord:
    """The record another process writes after loading ``metric``."""
    return CacheLoadRecord(
        1, metric, "day", "local", f"public.cache_acme_{metric}_day", 1, None, None, None,
        "succeeded", None, datetime.now(UTC), 0.1, version,
    )  # fmt: skip


def _next_run_loads_both_and_matches(engine: Engine) -> None:
    sink = SpySink(engine)
    result = cache_load.run(engine, SETTINGS, sink, Grain.DAY, tenant="acme")
    statuses = {c.context: c.status for c in result.contexts}
    assert statuses["acme::new_revenue"] == statuses["acme::orders"] == "succeeded"
    for metric in ("new_revenue", "orders"):
        table = sink.table_for("acme", metric, Grain.DAY)
        state = read_cache_frame(engine, 1, metric, "day")
        rows = sink.read(table) or []
        assert len(rows) == len(state) and rows, metric
    again = cache_load.run(engine, SETTINGS, SpySink(engine), Grain.DAY, tenant="acme")
    assert {c.context: c.status for c in again.contexts}["acme::orders"] == "unchanged"


def test_an_unopened_destination_records_its_failures_before_letting_the_loads_go(
    pg_engine: Engine, other: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken: list[bool] = []
    recording = cache_load.record

    def another_process_first(*args: Any) -> None:  # as the failure is about to be recorded
        if not taken:
            held = hold_loads(other, "local", [REVENUE, ORDERS])
            taken.extend([held.holds(REVENUE), held.holds(ORDERS)])
            for key, metric in ((REVENUE, "new_revenue"), (ORDERS, "orders")):
                if held.holds(key):  # it loads and records the load
                    record_cache_load(other, _success(metric, 1))
            held.release()
        recording(*args)

    monkeypatch.setattr(cache_load, "record", another_process_first)
    by = _sync_load(pg_engine, ActingSink(pg_engine, fail_open=SinkError("down")))
    assert by["acme::new_revenue"].status == by["acme::orders"].status == "failed"
    records = _records(pg_engine)
    # Taken by nobody else until the failures were recorded: no success was overwritten.
    assert taken == [False, False], {m: r.status for m, r in records.items()}
    assert records["new_revenue"].status == records["orders"].status == "failed"
    assert records["orders"].error == "down"
    after = hold_loads(other, "local", [REVENUE, ORDERS])  # let go once recorded
    assert after.holds(REVENUE) and after.holds(ORDERS)
    after.release()
    _next_run_loads_both_and_matches(pg_engine)


def test_an_unopened_destination_whose_hold_was_lost_leaves_the_others_success(
    pg_engine: Engine, other: Engine
) -> None:
    def lost_then_loaded_elsewhere() -> None:
        terminate_the_holder(other)
        held = hold_loads(other, "local", [REVENUE, ORDERS])  # the other process takes them
        assert held.holds(REVENUE) and held.holds(ORDERS)
        for metric in ("new_revenue", "orders"):
            record_cache_load(other, _success(metric, 1))  # ... loads and records them
        held.release()

    sink = ActingSink(pg_engine, at_open=lost_then_loaded_elsewhere, fail_open=SinkError("down"))
    by = _sync_load(pg_engine, sink)
    assert by["acme::orders"].status == "failed"  # this process's load did fail
    records = _records(pg_engine)
    assert records["new_revenue"].status == records["orders"].status == "succeeded"


def test_a_hold_lost_before_the_batch_loads_and_records_nothing(
    pg_engine: Engine, other: Engine
) -> None:
    taken: list[bool] = []

    def lost() -> None:  # the destination opens after the loads were taken
        terminate_the_holder(other)
        held = hold_loads(other, "local", [REVENUE, ORDERS])
        taken.extend([held.holds(REVENUE), held.holds(ORDERS)])
        held.release()  # the other process died before loading: the next run loads them

    sink = ActingSink(pg_engine, at_open=lost)
    by = _sync_load(pg_engine, sink)
    assert taken == [True, True]  # the loads could be taken by another process at once
    for name in ("acme::new_revenue", "acme::orders"):
        assert by[name].status == "skipped" and by[name].skip_reason == destination.LOCK_LOST
    assert not [c for c in sink.calls if c.startswith("replace")]  # nothing loaded
    assert _records(pg_engine) == {}  # nothing recorded
    _next_run_loads_both_and_matches(pg_engine)


def test_a_hold_lost_while_loading_fails_the_table_loaded_and_leaves_the_rest(
    pg_engine: Engine, other: Engine
) -> None:
    def lost_and_taken() -> None:  # during the batch's first table
        terminate_the_holder(other)
        held = hold_loads(other, "local", [REVENUE, ORDERS])
        assert held.holds(REVENUE) and held.holds(ORDERS)  # the other process could load
        held.release()

    sink = ActingSink(pg_engine, at_replace=lost_and_taken)
    result = cache_load.run(pg_engine, SETTINGS, sink, Grain.DAY, tenant="acme")
    replaced = [c.split()[1] for c in sink.calls if c.startswith("replace")]
    assert len(replaced) == 1  # the table being loaded when the hold was lost; no other
    by = {c.context: c for c in result.contexts}
    first = next(
        n for n in ("acme::new_revenue", "acme::orders") if by[n].table.endswith(replaced[0])
    )
    rest = next(n for n in ("acme::new_revenue", "acme::orders") if n != first)
    assert by[first].status == "failed" and by[first].error == destination.LOCK_LOST_LOADING
    assert by[rest].status == "skipped" and by[rest].skip_reason == destination.LOCK_LOST
    assert result.outcome in ("partial", "failed")
    records = _records(pg_engine)
    metric = first.split("::")[1]
    assert records[metric].status == "failed"  # not vouched for: the next run loads it again
    assert records[metric].error == destination.LOCK_LOST_LOADING
    assert rest.split("::")[1] not in records  # the table left is not recorded
    _next_run_loads_both_and_matches(pg_engine)


def test_the_hold_outlives_a_server_idle_in_transaction_timeout(other: Engine) -> None:
    @event.listens_for(other, "connect")
    def short_idle(dbapi_conn: Any, _record: Any) -> None:  # a server's (or role's) setting
        with dbapi_conn.cursor() as cur:
            cur.execute("SET idle_in_transaction_session_timeout = '50ms'")
        dbapi_conn.commit()

    other.dispose()  # new connections only
    held = hold_loads(other, "local", [REVENUE])
    try:
        assert held.conn is not None
        show = text("SHOW idle_in_transaction_session_timeout")
        assert held.conn.execute(show).scalar_one() == "0"  # for its own transaction only
        assert held.alive()
    finally:
        held.release()
    with other.connect() as conn:
        assert conn.execute(text("SHOW idle_in_transaction_session_timeout")).scalar() == "50ms"
