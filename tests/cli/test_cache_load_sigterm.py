"""``cache-load`` on SIGTERM: the load in flight finishes, no other starts, exit 143, the run
recorded ``interrupted`` and no key left running.

The slow sink is real: the local cache on PostgreSQL, with every cache table held by another
session's ``LOCK TABLE ... ACCESS EXCLUSIVE``. The load blocks on its table lock (seen in
``pg_stat_activity``), SIGTERM arrives, the lock is let go, and the process ends.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from cli_invoke import fulcrum_argv, process_env, run_process
from sqlalchemy import select

from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import open_engine

PERIOD = "2025-09-30"
METRICS = ("a", "b", "c", "d")


def write_catalog(path: Path) -> Path:
    metrics = [
        {
            "metric_id": m,
            "measure": "orders.total_amount",
            "time_dimension": "orders.created_at",
            "grains": ["day"],
        }
        for m in METRICS
    ]
    path.write_text(
        yaml.safe_dump({"tenants": [{"tenant_id": 3, "identifier": "slow", "metrics": metrics}]})
    )
    return path


def libpq(url: str) -> tuple[str, str]:
    """The psycopg connection string and schema of a test database URL."""
    engine = open_engine(url)
    try:
        with engine.connect() as conn:
            schema = conn.exec_driver_sql("SELECT current_schema()").scalar_one()
        dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    finally:
        engine.dispose()
    return dsn.split("?")[0], str(schema)


def wait_until(found: object, what: str, proc: subprocess.Popen[str], bound: float = 120) -> None:
    deadline = time.monotonic() + bound
    while not found():  # type: ignore[operator]
        if proc.poll() is not None:
            pytest.fail(f"cache-load ended ({proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {bound}s")
        time.sleep(0.05)


@dataclass(frozen=True)
class Stopped:
    """How a process SIGTERMed while its cache load waited on a table lock ended."""

    returncode: int
    out: str
    err: str
    seconds: float  # from the signal to the exit


@contextmanager
def load_blocked_on_its_tables(pg_url: str, env: dict[str, str], *argv: str) -> Iterator[Any]:
    """Start ``fulcrum-sync *argv`` with every cache table held by another session's
    ``LOCK TABLE ... ACCESS EXCLUSIVE``; yield (process, locker, watcher, stderr lines) once
    its load waits on that lock (seen in ``pg_stat_activity``). The process is killed if it
    still runs at the end."""
    dsn, schema = libpq(pg_url)
    tables = [f"{schema}.cache_slow_{m}_day" for m in METRICS]
    with psycopg.connect(dsn) as locker, psycopg.connect(dsn, autocommit=True) as watcher:
        locker.execute(f"LOCK TABLE {', '.join(tables)} IN ACCESS EXCLUSIVE MODE")
        proc = subprocess.Popen(
            fulcrum_argv(*argv), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        errors: list[str] = []
        reader = threading.Thread(target=lambda: errors.extend(proc.stderr or []))
        reader.start()
        try:

            def blocked() -> bool:
                row = watcher.execute(  # in this database: the other xdist worker has its own
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database() AND query ILIKE '%cache_slow_%' "
                    "AND pid <> pg_backend_pid()"
                ).fetchone()
                return bool(row and row[0])

            wait_until(blocked, "load blocked on its table lock", proc)
            yield proc, locker, watcher, errors
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            reader.join(10)


def sigterm_while_the_load_waits(pg_url: str, env: dict[str, str], *argv: str) -> Stopped:
    """Start ``fulcrum-sync *argv`` with its load blocked on a table lock
    (:func:`load_blocked_on_its_tables`), send SIGTERM, wait until the process says it heard
    it, then let the lock go."""
    with load_blocked_on_its_tables(pg_url, env, *argv) as (proc, locker, _watcher, errors):
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        heard = lambda: any("Received SIGTERM" in e for e in errors)  # noqa: E731
        wait_until(heard, "the signal heard", proc)  # while the load waits on the lock
        locker.rollback()  # the load in flight can finish now
        out = proc.communicate(timeout=60)[0]
        seconds = time.monotonic() - sent
    return Stopped(proc.returncode, out, "".join(errors), seconds)


@pytest.mark.slow
def test_sigterm_during_a_blocked_cache_load_exits_143_and_records_interrupted(
    pg_url: str, tmp_path: Path
) -> None:
    env = process_env(pg_url)
    for args in (
        ["catalog", "load", str(write_catalog(tmp_path / "c.yaml"))],
        ["sync", "--grain", "day", "--period", PERIOD, "--no-patterns"],
        ["cache-load", "--grain", "day"],  # creates the tables the lock below holds
    ):
        done = run_process(*args, env=env)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    stopped = sigterm_while_the_load_waits(pg_url, env, "cache-load", "--grain", "day", "--force")
    out, err, seconds = stopped.out, stopped.err, stopped.seconds
    assert stopped.returncode == 143, out[-2000:] + err
    assert "Received SIGTERM" in err
    engine = open_engine(pg_url)
    try:
        with engine.connect() as conn:
            runs = conn.execute(
                select(t.runs.c.outcome, t.runs.c.summary)
                .where(t.runs.c.command == "cache-load")
                .order_by(t.runs.c.started_at)
            ).all()
            keys = [r[0] for r in conn.execute(select(t.run_items.c.status))]
    finally:
        engine.dispose()
    assert [r[0] for r in runs] == ["succeeded", "interrupted"]
    summary = runs[-1][1]
    # The load in flight (one destination's batch: the local cache's every table) finished;
    # nothing else was started.
    assert summary["failed"] == 0 and summary["succeeded"] >= 1
    assert summary["succeeded"] + summary["not_started"] == len(METRICS)
    assert "running" not in keys
    print(f"figures: cache-load exit 143 {seconds:.2f}s after SIGTERM, summary {summary}")

    again = run_process(
        "cache-load", "--grain", "day", "--force", env=env
    )  # the next run loads them all
    assert again.returncode == 0, again.stdout[-2000:]
