"""The state database going away, refusing us, or blocking us: every run survives or says so.

Failures are caused for real: a private PostgreSQL server (initdb + pg_ctl, on a free port)
stopped under a running sync and started again (or not), a SIGKILLed sync, a table held
``ACCESS EXCLUSIVE`` by another session. Then we check what an operator would: the exit
code, the JSON log lines, the run record, the rows and what the next plain run does.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cli_invoke import Cli, fulcrum_argv, json_lines, process_env
from process_moments import held_after
from sqlalchemy import select
from test_sync_processes import wait_for_succeeded
from test_truthful_runs import digest, write_catalog

from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import open_engine

SYNC = ["sync", "--grain", "day", "--period", "2025-09-30"]


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(candidates[-1]) if candidates else None


def _as_owner(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the postgres user then."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PrivateServer:
    """A PostgreSQL server of our own, to stop and start under a running sync."""

    datadir: str
    port: int
    pg_ctl: str

    def _ctl(self, *args: str) -> None:
        command = _as_owner([self.pg_ctl, "-D", self.datadir, "-w", *args])
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr

    def start(self) -> None:
        options = f"-p {self.port} -k {self.datadir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._ctl("-o", options, "-l", f"{self.datadir}/server.log", "start")

    def stop(self) -> None:
        self._ctl("-m", "fast", "stop")

    def new_database(self) -> str:
        name = f"outage_{uuid.uuid4().hex[:8]}"
        admin = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"


@pytest.fixture(scope="module")
def private_pg() -> Iterator[PrivateServer]:
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("initdb/pg_ctl not installed")
    datadir = tempfile.mkdtemp(prefix="fulcrum_outage_", dir="/tmp")
    if os.geteuid() == 0:
        shutil.chown(datadir, "postgres", "postgres")
    done = subprocess.run(
        _as_owner([initdb, "-D", datadir, "-U", "postgres", "-A", "trust"]),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    port = int(os.environ.get("FULCRUM_SYNC_TEST_PRIVATE_PG_PORT", "0")) or _free_port()
    server = PrivateServer(datadir, port, pg_ctl)
    server.start()
    try:
        yield server
    finally:
        subprocess.run(_as_owner([pg_ctl, "-D", datadir, "-m", "immediate", "stop"]), check=False)
        shutil.rmtree(datadir, ignore_errors=True)


def _start_sync(url: str, tmp_path: Path, *extra: str, **env: str) -> subprocess.Popen[str]:
    environment = process_env(url) | env
    return subprocess.Popen(
        fulcrum_argv(*SYNC, *extra),
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )


def _prepared(url: str, tmp_path: Path, metrics: int) -> str:
    """Load the catalog into ``url`` and into a clean SQLite file synced once; return it."""
    catalog = write_catalog(tmp_path / "catalog.yaml", metrics=metrics)
    clean = f"sqlite:///{tmp_path / 'clean.db'}"
    for target in (clean, url):
        assert Cli.on(target)("catalog", "load", str(catalog)).exit_code == 0
    assert Cli.on(clean)(*SYNC).exit_code == 0
    return clean


def _wait_for_keys(url: str, proc: subprocess.Popen[str], wanted: int) -> None:
    engine = open_engine(url)
    try:
        assert wait_for_succeeded(engine, proc, wanted) >= wanted
    finally:
        engine.dispose()
    assert proc.poll() is None, "the sync ended before the failure could be caused"


def _runs(url: str) -> dict[str, dict[str, Any]]:
    listed = Cli.on(url)("runs", "--json", "--limit", "100")
    assert listed.exit_code == 0, listed.output
    return {run["run_id"]: run for run in json.loads(listed.stdout)}


def _keys_of(url: str, run_id: str) -> list[str]:
    engine = open_engine(url)
    try:
        with engine.connect() as conn:
            c = t.run_items.c
            return list(conn.execute(select(c.status).where(c.run_id == run_id)).scalars())
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- server stopped


@pytest.mark.slow
def test_a_database_stopped_for_8_seconds_mid_sync_costs_nothing(
    private_pg: PrivateServer, tmp_path: Path
) -> None:
    url = private_pg.new_database()
    clean = _prepared(url, tmp_path, metrics=24)
    proc = _start_sync(url, tmp_path, "--workers", "2")
    _wait_for_keys(url, proc, 3)
    private_pg.stop()
    time.sleep(8)  # the outage itself: the server is down this long
    private_pg.start()
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    lines = json_lines(out)
    waits = [e for e in lines if e["level"] == "warning" and "unreachable" in e["event"]]
    backs = [e for e in lines if e["level"] == "info" and "is back after" in e["event"]]
    assert waits and backs, out[-2000:]
    finished = lines[-1]
    assert finished["event"] == "sync finished" and finished["outcome"] == "succeeded"
    stored = digest(url)
    assert stored == digest(clean)  # series, dimension rows, pattern results: exact
    assert set(_keys_of(url, finished["run_id"])) == {"succeeded"}
    print(f"\nstopped 8 s mid-sync: exit 0, rows equal to a clean run: {stored}")


@pytest.mark.slow
def test_a_database_gone_for_good_exits_3_within_the_bound_and_is_abandoned_next(
    private_pg: PrivateServer, tmp_path: Path
) -> None:
    url = private_pg.new_database()
    clean = _prepared(url, tmp_path, metrics=24)
    proc = _start_sync(url, tmp_path, "--workers", "2", FULCRUM_SYNC_DATABASE_RETRY_SECONDS="4")
    _wait_for_keys(url, proc, 3)
    private_pg.stop()
    stopped = time.monotonic()
    try:
        out, err = proc.communicate(timeout=120)
        seconds = time.monotonic() - stopped
    finally:
        private_pg.start()
    assert proc.returncode == 3, err
    assert seconds < 4 + 30, seconds  # the bound, and a generous margin for a loaded machine
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert "unreachable: gave up after 4 s (FULCRUM_SYNC_DATABASE_RETRY_SECONDS)" in err
    dead = json_lines(out)[0]["run_id"]
    print(f"\ngone for good: exit 3 {seconds:.1f} s after the stop: {err.strip()}")

    again = Cli.on(url)(*SYNC)  # the next run closes the dead run's record
    assert again.exit_code == 0, again.output
    runs = _runs(url)
    assert runs[dead]["outcome"] == "abandoned"
    assert "is gone" in runs[dead]["summary"]["error"]
    assert "running" not in _keys_of(url, dead)
    assert digest(url) == digest(clean)


# --------------------------------------------------------------------------- SIGKILL


@pytest.mark.slow
def test_a_sigkilled_sync_is_closed_abandoned_and_its_keys_released(
    pg_url: str, tmp_path: Path
) -> None:
    clean = _prepared(pg_url, tmp_path, metrics=24)
    proc = _start_sync(pg_url, tmp_path, "--workers", "2")
    # Killed with 3 keys done and one claimed: a worker between two keys holds none, and
    # a kill at that moment (seen once in CI) would leave nothing to release.
    with held_after(pg_url, proc, 3, claimed=1):
        assert proc.poll() is None, "the sync ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=60)
    # The run is found as an operator would, in the record, and in the job's logs: its first
    # line, written once the run was recorded, names it and the process.
    alive = [run for run, row in _runs(pg_url).items() if row["outcome"] == "running"]
    assert len(alive) == 1, alive  # what SIGKILL leaves behind
    dead = alive[0]
    started = json.loads(out.splitlines()[0])  # a killed process may cut its last line
    assert (started["event"], started["run_id"]) == ("sync started", dead)
    assert started["owner"].split(":")[1] == str(proc.pid)
    assert started["counts"] == {"contexts": 24} and started["grain"] == "day"

    # Any command that starts a run closes it: cache-load claims no key of its own.
    assert Cli.on(pg_url)("cache-load", "--grain", "day").exit_code == 0
    run = _runs(pg_url)[dead]
    assert run["outcome"] == "abandoned" and run["finished_at"]
    keys = _keys_of(pg_url, dead)
    assert "running" not in keys and "released" in keys, keys
    shown = Cli.on(pg_url)("runs", "show", dead)
    assert shown.exit_code == 0 and "abandoned" in shown.output

    again = Cli.on(pg_url)(*SYNC)
    assert again.exit_code == 0, again.output
    assert digest(pg_url) == digest(clean)


# --------------------------------------------------------------------------- a held lock


@pytest.mark.slow
def test_a_table_lock_fails_the_blocked_contexts_within_a_minute_and_the_next_run_heals(
    pg_url: str, tmp_path: Path
) -> None:
    clean = _prepared(pg_url, tmp_path, metrics=9)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:  # another session holds the table for up to 90 s
        plain, _, query = pg_url.replace("+psycopg", "").partition("?")
        schema = query.split("%3D", 1)[1]
        with psycopg.connect(plain) as conn:
            conn.execute(f'LOCK TABLE "{schema}".metric_time_series IN ACCESS EXCLUSIVE MODE')
            holding.set()
            release.wait(90)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    try:
        assert holding.wait(30)
        started = time.monotonic()
        proc = _start_sync(
            pg_url, tmp_path, "--workers", "4", FULCRUM_SYNC_DATABASE_LOCK_TIMEOUT_SECONDS="5"
        )
        out, err = proc.communicate(timeout=120)
        seconds = time.monotonic() - started
    finally:
        release.set()
        holder.join(timeout=30)
    assert proc.returncode == 1, err
    assert seconds < 60, seconds
    lines = json_lines(out)  # every stdout line is JSON
    failed = [e for e in lines if e["event"] == "context failed"]
    assert len(failed) == 9
    assert all("lock on metric_time_series not granted within 5 s" in e["error"] for e in failed)
    waiting = [e for e in lines if e["level"] == "warning" and "waiting" in e["event"]]
    assert any("a lock on metric_time_series" in e["event"] and e["tenant"] for e in waiting)
    assert lines[-1]["outcome"] == "partial"
    print(f"\nlocked: exit 1 after {seconds:.1f} s; {failed[0]['error']}; {waiting[0]['event']}")

    again = Cli.on(pg_url)(*SYNC)  # the lock is gone: the next plain run finishes them
    assert again.exit_code == 0, again.output
    assert digest(pg_url) == digest(clean)


# --------------------------------------------------------------------------- a full disk


def test_a_full_disk_fails_the_run_cleanly_and_records_it(pg_url: str, tmp_path: Path) -> None:
    assert Cli.on(pg_url)(*SYNC, "--tenant", "acme").exit_code == 0  # the schema and catalog
    plain, _, query = pg_url.replace("+psycopg", "").partition("?")
    schema = query.split("%3D", 1)[1]
    with psycopg.connect(plain, autocommit=True) as conn:  # what PostgreSQL says on ENOSPC
        conn.execute(
            f'CREATE FUNCTION "{schema}".full_disk() RETURNS trigger AS $$ BEGIN RAISE '
            "EXCEPTION 'could not extend file \"base/1/2\": No space left on device' USING "
            "ERRCODE = '53100'; END $$ LANGUAGE plpgsql"
        )
        conn.execute(
            f'CREATE TRIGGER full_disk BEFORE INSERT OR UPDATE ON "{schema}".metric_time_series '
            f'FOR EACH ROW EXECUTE FUNCTION "{schema}".full_disk()'
        )
    result = Cli.on(pg_url)("sync", "--grain", "day", "--period", "2025-10-01", "--json")
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output
    document = json.loads(result.stdout)
    assert document["outcome"] == "failed"
    assert "No space left on device" in document["contexts"][0]["error"]
    latest = max(_runs(pg_url).values(), key=lambda run: run["started_at"])
    assert latest["outcome"] == "failed" and latest["finished_at"]
