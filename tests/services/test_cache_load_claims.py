"""Cache loads taken before they are done (PostgreSQL): a load another process holds is left
to it, a holder that dies leaves it to the next run, and a load taken after another process
did it finds it unchanged."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import Engine, select, text
from test_cache_load_service import SETTINGS, SpySink

from fulcrum_sync.domain import Grain
from fulcrum_sync.services.cache import destination
from fulcrum_sync.services.cache import load as cache_load
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.cache import read_cache_loads
from fulcrum_sync.store.cache_claims import hold_loads
from fulcrum_sync.store.engine import open_engine

REVENUE = (1, "new_revenue", "day")


def _statuses(engine: Engine, sink: SpySink) -> dict[str, str]:
    result = cache_load.run(engine, SETTINGS, sink, Grain.DAY, metric=None, tenant="acme")
    return {c.context: c.status for c in result.contexts}


def test_a_load_another_process_holds_is_left_to_it_and_done_after_it_died(
    pg_engine: Engine, other: Engine
) -> None:
    held = hold_loads(other, "local", [REVENUE])
    assert held.holds(REVENUE)
    try:
        sink = SpySink(pg_engine)
        result = cache_load.run(pg_engine, SETTINGS, sink, Grain.DAY, tenant="acme")
    finally:
        held.release()  # the holder dies before recording anything
    by = {c.context: c for c in result.contexts}
    assert by["acme::new_revenue"].status == "skipped"
    assert by["acme::new_revenue"].skip_reason == destination.LOADING_ELSEWHERE
    assert by["acme::orders"].status == "succeeded"
    assert "replace cache_acme_new_revenue_day" not in sink.calls
    assert result.outcome == "succeeded" and result.summary()["skipped"] == 2  # + empty one
    recorded = {r.metric_id for r in read_cache_loads(pg_engine, "day")}
    assert "new_revenue" not in recorded  # the skip is the holder's to record, not ours
    with pg_engine.connect() as conn:
        summary = conn.execute(
            select(t.runs.c.summary).where(t.runs.c.run_id == result.run_id)
        ).scalar_one()
    assert (summary["succeeded"], summary["skipped"]) == (1, 2)

    again = SpySink(pg_engine)
    statuses = _statuses(pg_engine, again)
    assert statuses["acme::new_revenue"] == "succeeded"  # the next run loads it
    assert statuses["acme::orders"] == "unchanged"
    assert again.calls.count("replace cache_acme_new_revenue_day") == 1


def test_a_load_taken_after_another_process_did_it_is_unchanged(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _statuses(pg_engine, SpySink(pg_engine))["acme::orders"] == "succeeded"
    # Both contexts looked changed when first read (the other process had not recorded its
    # load yet): the read made once the load is taken finds them loaded.
    monkeypatch.setattr(destination, "unchanged", lambda *_args: False)
    sink = SpySink(pg_engine)
    statuses = _statuses(pg_engine, sink)
    assert statuses["acme::new_revenue"] == statuses["acme::orders"] == "unchanged"
    assert not [c for c in sink.calls if c.startswith("replace")]


def test_held_loads_are_taken_once_and_come_back_when_released(other: Engine, pg_url: str):
    engine = open_engine(pg_url)
    try:
        first = hold_loads(other, "local", [REVENUE])
        second = hold_loads(engine, "local", [REVENUE, (1, "orders", "day")])
        assert first.holds(REVENUE) and not second.holds(REVENUE)
        assert second.holds((1, "orders", "day"))
        first.release()
        second.release()
        third = hold_loads(engine, "local", [REVENUE])
        assert third.holds(REVENUE)
        third.release()
    finally:
        engine.dispose()


HOLDER = """
import sys
from fulcrum_sync.store.cache_claims import hold_loads
from fulcrum_sync.store.engine import open_engine
held = hold_loads(open_engine(sys.argv[1]), "local", [(1, "new_revenue", "day")])
pid = held.conn.connection.dbapi_connection.info.backend_pid
print(pid if held.holds((1, "new_revenue", "day")) else "not held", flush=True)
sys.stdin.read()  # until killed
"""


@pytest.mark.slow
def test_a_holder_killed_mid_load_leaves_the_load_to_the_next_run(
    pg_engine: Engine, pg_url: str
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, pg_url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        backend = int(holder.stdout.readline())
        assert _statuses(pg_engine, SpySink(pg_engine))["acme::new_revenue"] == "skipped"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    _wait_gone(pg_engine, backend)  # its server session ends once it sees the socket closed
    statuses = _statuses(pg_engine, SpySink(pg_engine))
    assert statuses["acme::new_revenue"] == "succeeded"  # its lock died with its connection
    assert statuses["acme::orders"] == "unchanged"


def _wait_gone(engine: Engine, backend: int) -> None:
    query = text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if not conn.execute(query, {"pid": backend}).scalar_one():
                return
        time.sleep(0.02)
    raise AssertionError(f"the killed holder's session {backend} is still there")
