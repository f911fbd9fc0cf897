"""The state database's address, limits and run records: refused addresses are configuration
(exit 2, the fix in one line, no password), ``postgres://`` is psycopg 3, every session has
its timeouts, a lost server is waited for (and the wait ends on the stop event), and runs
whose process is gone are closed ``abandoned``."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from cli_invoke import Cli
from sqlalchemy import Engine, select, update
from sqlalchemy.exc import OperationalError

from fulcrum_sync.config import DatabaseLimits, load_settings
from fulcrum_sync.domain import StopRequested, StoreBusyError, StoreError, is_outage
from fulcrum_sync.store import run_records
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import normalize_url, open_engine, translate_errors
from fulcrum_sync.store.retry import patiently, set_patience

PG = "127.0.0.1:5432"


def _sync(url: str) -> tuple[int, str]:
    result = Cli.on(url)("sync", "--grain", "day")
    return result.exit_code, result.output


def test_a_database_that_does_not_exist_is_configuration_with_the_fix() -> None:
    name = f"missing_{uuid.uuid4().hex[:8]}"
    code, output = _sync(f"postgresql://postgres:MARKPW@{PG}/{name}")
    assert code == 2, output
    assert output.strip().count("\n") == 0, output
    assert f"database '{name}' does not exist on 127.0.0.1:5432: create it or fix " in output
    assert "FULCRUM_SYNC_DATABASE_URL" in output and "MARKPW" not in output


def test_a_role_that_does_not_exist_is_configuration_with_the_fix() -> None:
    role = f"nobody_{uuid.uuid4().hex[:8]}"
    code, output = _sync(f"postgresql+psycopg://{role}:MARKPW@{PG}/postgres")
    assert code == 2, output
    assert output.strip().count("\n") == 0, output
    assert f"role '{role}' does not exist on 127.0.0.1:5432" in output
    assert "MARKPW" not in output


def test_postgres_and_postgresql_urls_mean_psycopg_3(pg_database: str) -> None:
    plain = pg_database.replace("postgresql+psycopg://", "postgres://")
    assert normalize_url(plain).startswith("postgresql+psycopg://")
    assert normalize_url(plain.replace("postgres://", "postgresql://")).startswith(
        "postgresql+psycopg://"
    )
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"
    code, output = _sync(plain)
    assert code == 0, output


def test_every_postgresql_session_has_its_lock_and_statement_timeouts(pg_url: str) -> None:
    engine = open_engine(pg_url, limits=DatabaseLimits(lock_seconds=7, statement_seconds=90))
    try:
        with engine.connect() as conn:
            shown = [conn.exec_driver_sql(f"SHOW {name}").scalar() for name in _SETTINGS]
        assert shown[:2] == ["7s", "90s"]
        assert shown[2].startswith("t_")  # the URL's own options (search_path) are kept
    finally:
        engine.dispose()


_SETTINGS = ("lock_timeout", "statement_timeout", "search_path")


def test_a_silent_connection_counts_as_lost_after_dead_after_seconds_on_both_ends(
    pg_url: str,
) -> None:
    """Keepalives and tcp_user_timeout on the client's socket (libpq) and the server's (its
    session settings), from FULCRUM_SYNC_DATABASE_DEAD_AFTER_SECONDS; the URL's own win.
    A cut network is caused for real in test_database_network_cut.py."""
    server = ("tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count")
    engine = open_engine(pg_url, limits=DatabaseLimits(dead_after_seconds=30))
    try:
        with engine.connect() as conn:
            shown = [conn.exec_driver_sql(f"SHOW {name}").scalar() for name in server]
            timeout = conn.exec_driver_sql("SHOW tcp_user_timeout").scalar()
            client = conn.connection.driver_connection.info.get_parameters()  # type: ignore[union-attr]
        assert shown == ["10", "5", "3"] and timeout == "30000"  # milliseconds
        assert (client["keepalives_idle"], client["tcp_user_timeout"]) == ("10", "30000")
    finally:
        engine.dispose()
    own = f"{pg_url}{'&' if '?' in pg_url else '?'}keepalives_idle=60"
    engine = open_engine(own, limits=DatabaseLimits(dead_after_seconds=0))
    try:
        with engine.connect() as conn:
            client = conn.connection.driver_connection.info.get_parameters()  # type: ignore[union-attr]
            assert conn.exec_driver_sql("SHOW tcp_keepalives_idle").scalar() != "10"  # the system.s
        assert client["keepalives_idle"] == "60" and "tcp_user_timeout" not in client
    finally:
        engine.dispose()


def test_the_settings_have_their_documented_defaults() -> None:
    limits = load_settings().database_limits
    assert limits == DatabaseLimits(
        lock_seconds=30, statement_seconds=300, retry_seconds=60, dead_after_seconds=30
    )


# --------------------------------------------------------------------------- waiting


def _lost() -> StoreError:
    """A StoreError as a store call raises it when the server refuses connections."""
    error = StoreError("cannot connect to the state database")
    error.__cause__ = OperationalError(
        "connect", {}, psycopg.OperationalError("Connection refused")
    )
    return error


def test_a_lost_database_is_waited_for_with_one_warning_and_one_info(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = open_engine(pg_url)
    lost = _lost()
    set_patience(engine, seconds=30)
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 4:
            raise lost
        return "done"

    with caplog.at_level(logging.INFO, logger="fulcrum_sync.store.retry"):
        assert patiently(engine, flaky) == "done"
    assert len(calls) == 4
    levels = [r.levelname for r in caplog.records]
    assert levels == ["WARNING", "INFO"], caplog.text
    assert "waiting up to 30 s" in caplog.records[0].getMessage()
    engine.dispose()


def test_the_wait_ends_on_the_stop_event_and_past_the_bound(pg_url: str) -> None:
    engine = open_engine(pg_url)
    lost = _lost()
    stop = threading.Event()
    set_patience(engine, seconds=600, stop=stop)

    def always() -> None:
        raise lost

    threading.Timer(0.5, stop.set).start()
    started = time.monotonic()
    with pytest.raises(StopRequested, match="stopped while waiting for the state database"):
        patiently(engine, always)  # SIGTERM: interrupted (exit 143), like every other wait
    assert time.monotonic() - started < 30  # woken by the event, not the 600 s bound

    set_patience(engine, seconds=0.5, stop=threading.Event())
    with pytest.raises(StoreError, match=r"gave up after 0.5 s \(FULCRUM_SYNC_DATABASE_RETRY"):
        patiently(engine, always)
    engine.dispose()


# --------------------------------------------------------------------------- abandoned runs


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], text=True,
                          capture_output=True, check=True)  # fmt: skip
    return int(proc.stdout)


def _running(engine: Engine, *, host: str, pid: int, beat: datetime) -> str:
    run_id = str(uuid.uuid4())
    with engine.begin() as conn:
        conn.execute(
            t.runs.insert().values(
                run_id=run_id, command="sync", arguments={}, host=host, pid=pid,
                started_at=beat, heartbeat_at=beat, outcome="running",
            )
        )  # fmt: skip
        conn.execute(
            t.run_items.insert().values(
                run_key=f"sync:day:2025-09-30:a::{run_id}", kind="sync", grain="day",
                period=datetime(2025, 9, 30).date(), tenant="a", metric_id=run_id[:8],
                status="running", attempts=1, run_id=run_id, lease_owner=f"{host}:{pid}:x",
                lease_expires_at=beat + timedelta(hours=1), created_at=beat,
            )
        )  # fmt: skip
    return run_id


def _outcome(engine: Engine, run_id: str) -> tuple[str, str]:
    with engine.connect() as conn:
        outcome = conn.execute(select(t.runs.c.outcome).where(t.runs.c.run_id == run_id))
        status = conn.execute(select(t.run_items.c.status).where(t.run_items.c.run_id == run_id))
        return outcome.scalar_one(), status.scalar_one()


def test_runs_of_dead_processes_are_closed_abandoned_and_live_ones_are_not(db_url: str) -> None:
    engine = open_engine(db_url)
    now = datetime.now(UTC)
    here = socket.gethostname()
    dead_here = _running(engine, host=here, pid=_dead_pid(), beat=now)
    alive_here = _running(engine, host=here, pid=os.getppid(), beat=now)
    silent_there = _running(engine, host="other-pod", pid=1, beat=now - timedelta(seconds=300))
    beating_there = _running(engine, host="other-pod", pid=1, beat=now - timedelta(seconds=10))
    mine = run_records.start_run(engine, "sync", {})  # this process's own run, pid alive
    try:
        closed = run_records.close_abandoned(engine, lease_seconds=120)
        assert {r.run_id for r in closed} == {dead_here, silent_there}
        assert _outcome(engine, dead_here) == ("abandoned", "released")
        assert _outcome(engine, silent_there) == ("abandoned", "released")
        assert _outcome(engine, alive_here) == ("running", "running")
        assert _outcome(engine, beating_there) == ("running", "running")
        assert run_records.close_abandoned(engine, lease_seconds=120) == []  # closed once
        listed = run_records.abandoned_since(engine, now - timedelta(minutes=10))
        assert {r.run_id for r in listed} == {dead_here, silent_there}
        assert all(r.error and "is gone" in r.error for r in listed)
        assert run_records.abandoned_since(engine, now + timedelta(minutes=1)) == []
        with engine.begin() as conn:  # an earlier life of this very pid (a restarted pod)
            conn.execute(
                update(t.runs).where(t.runs.c.run_id == alive_here).values(pid=os.getpid())
            )
        closed = run_records.close_abandoned(engine, lease_seconds=120)
        assert [r.run_id for r in closed] == [alive_here]  # not ``mine``: it is live
    finally:
        run_records.finish_run(engine, mine, "succeeded", {})
        engine.dispose()


def test_a_heartbeat_keeps_a_run_on_another_host_alive(sqlite_url: str) -> None:
    engine = open_engine(sqlite_url)
    old = datetime.now(UTC) - timedelta(seconds=300)
    there = _running(engine, host="other-pod", pid=1, beat=old)
    run_records.beat(engine, there)
    assert run_records.close_abandoned(engine, lease_seconds=120) == []
    engine.dispose()


def test_a_statement_past_its_timeout_fails_with_a_line_naming_the_table(pg_url: str) -> None:
    engine = open_engine(pg_url, limits=DatabaseLimits(statement_seconds=0.5))
    try:
        slow = "SELECT pg_sleep(5) FROM runs UNION ALL SELECT pg_sleep(5)"
        with (
            pytest.raises(StoreBusyError) as caught,
            translate_errors(engine, "read runs from"),
            engine.connect() as conn,
        ):
            conn.exec_driver_sql(slow)
        assert str(caught.value) == (
            "statement on runs cancelled after 0.5 s "
            "(FULCRUM_SYNC_DATABASE_STATEMENT_TIMEOUT_SECONDS)"
        )
        assert not is_outage(caught.value)  # that context fails; the run goes on
    finally:
        engine.dispose()
