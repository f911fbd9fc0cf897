"""Runs that tell the truth: outcomes, exit codes, logs and keys match what happened.

Failures are caused for real: SIGTERM to a running process, ``pg_terminate_backend`` on its
connections, a Cube that answers 403 or 400 to everything, a closed port, a pattern that
crashes. Then we check what an operator would: the exit code, the JSON log lines, the run
record, the run keys, the rows, and what the next plain run does.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import signal
import subprocess
import time
import uuid
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from cli_invoke import Cli, fulcrum_argv, json_lines, process_env
from cube_server import FakeCube
from process_moments import held_after
from sqlalchemy import Engine, func, select, update
from test_cli_sync_cube import CUBES, closed_port, cube_env, daily_data
from test_cli_sync_cube import write_catalog as write_cube_catalog
from test_sync_processes import wait_for_succeeded

from fulcrum_sync.patterns.registry import REGISTRY
from fulcrum_sync.services.deps import Deps
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import open_engine, reconnecting, translate_errors

PERIOD = "2025-09-30"
SYNC = ["sync", "--grain", "day", "--period", PERIOD]


def write_catalog(path: Path, metrics: int) -> Path:
    """One tenant, ``metrics`` metrics with two dimensions and two patterns each."""
    catalog = {
        "tenants": [
            {
                "tenant_id": 9,
                "identifier": "steady",
                "metrics": [
                    {
                        "metric_id": f"m{i:02d}",
                        "measure": f"orders.amount_{i}",
                        "time_dimension": "orders.created_at",
                        "dimensions": [
                            {"dimension_id": d, "member": f"orders.{d}"}
                            for d in ("region", "channel")
                        ],
                        "grains": ["day"],
                        "patterns": ["performance_status", "data_quality"],
                    }
                    for i in range(metrics)
                ],
            }
        ]
    }
    path.write_text(yaml.safe_dump(catalog))
    return path


def digest(url: str) -> dict[str, tuple[int, str]]:
    """What a state database holds: series, dimension rows, pattern results (count, hash)."""
    queries = {
        "series": select(t.metric_time_series).order_by(*t.metric_time_series.primary_key),
        "dims": select(t.metric_dimensional_time_series).order_by(
            *t.metric_dimensional_time_series.primary_key
        ),
        "patterns": select(
            *(c for c in t.pattern_results.c if c.name not in ("run_id", "run_at"))
        ).order_by(*t.pattern_results.primary_key),
    }
    engine = open_engine(url)
    try:
        with engine.connect() as conn:
            out = {}
            for name, query in queries.items():
                rows = [tuple(r) for r in conn.execute(query)]
                out[name] = (len(rows), hashlib.sha256(repr(rows).encode()).hexdigest())
            return out
    finally:
        engine.dispose()


def key_statuses(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(select(t.run_items.c.status))]


def run_rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(t.runs))]


def _start_beside_a_clean_run(
    tmp_path: Path, metrics: int, clean: str, pg_url: str, process_url: str, command: Sequence[str]
) -> subprocess.Popen[str]:
    """Load a catalog of ``metrics`` into ``clean`` and ``pg_url``, run ``command`` to the end on
    ``clean`` (the reference), then start it on ``process_url`` in a process of its own."""
    catalog = write_catalog(tmp_path / "catalog.yaml", metrics=metrics)
    for url in (clean, pg_url):
        assert Cli.on(url)("catalog", "load", str(catalog)).exit_code == 0
    assert Cli.on(clean)(*command).exit_code == 0
    return subprocess.Popen(
        fulcrum_argv(*command, "--workers", "2"),
        env=process_env(process_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )


# --------------------------------------------------------------------------- SIGTERM


@pytest.mark.slow
def test_sigterm_then_a_plain_sync_finishes_the_patterns(pg_url: str, tmp_path: Path) -> None:
    clean = f"sqlite:///{tmp_path / 'clean.db'}"
    proc = _start_beside_a_clean_run(tmp_path, 24, clean, pg_url, pg_url, SYNC)
    engine = open_engine(pg_url)
    try:
        with held_after(pg_url, proc, 4, claimed=1):  # writes held: it cannot finish
            assert proc.poll() is None, "sync finished before SIGTERM could be sent"
            proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 143
        assert json_lines(out)[-1]["outcome"] == "interrupted"
        statuses = key_statuses(engine)
        assert "running" not in statuses and "released" in statuses
        assert [r["outcome"] for r in run_rows(engine)] == ["interrupted"]

        again = Cli.on(pg_url)(*SYNC, "--json")  # a plain sync: no --force
        assert again.exit_code == 0, again.output
        assert set(key_statuses(engine)) == {"succeeded"}
    finally:
        engine.dispose()
    assert digest(pg_url) == digest(clean)


def test_a_done_context_runs_its_unfinished_patterns_without_refetching(db_url: str) -> None:
    cli = Cli.on(db_url)
    assert cli(*SYNC, "--tenant", "acme").exit_code == 0
    engine = open_engine(db_url)
    try:
        key = t.run_items.c
        with engine.begin() as conn:  # what a SIGTERM leaves: released keys, no results
            conn.execute(
                update(t.run_items)
                .where(key.kind == "pattern", key.pattern == "forecasting")
                .values(status="released", lease_owner=None)
            )
            conn.execute(
                t.pattern_results.delete().where(t.pattern_results.c.pattern == "forecasting")
            )
        again = cli(*SYNC, "--tenant", "acme", "--json")
        assert again.exit_code == 0, again.output
        document = json.loads(again.stdout)
        finished = [c for c in document["contexts"] if c["patterns"]]
        assert finished and all(c["status"] == "skipped" for c in document["contexts"])
        assert all(c["rows_stored"] == 0 for c in document["contexts"])  # nothing re-fetched
        ran = {p["pattern"] for c in finished for p in c["patterns"] if p["status"] != "skipped"}
        assert ran == {"forecasting"}
        assert set(key_statuses(engine)) == {"succeeded"}
        with engine.connect() as conn:
            results = conn.execute(
                select(t.pattern_results).where(t.pattern_results.c.pattern == "forecasting")
            ).all()
        assert len(results) == len(finished)
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- lost connections


ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _terminate(application_name: str) -> int:
    admin = psycopg.connect(ADMIN, autocommit=True)
    with admin:
        row = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = %s",
            (application_name,),
        ).fetchone()
    return int(row[0]) if row else 0


@pytest.mark.slow
@pytest.mark.parametrize(
    ("command", "kills"),
    [
        (["sync", "--grain", "day", "--period", PERIOD], 3),
        (["backfill", "--grain", "day", "--start", "2025-09-21", "--end", PERIOD], 1),
    ],
    ids=["sync-3-kills", "backfill-1-kill"],
)
def test_lost_connections_cost_at_most_the_work_in_flight(
    pg_url: str, tmp_path: Path, command: list[str], kills: int
) -> None:
    clean = f"sqlite:///{tmp_path / 'clean.db'}"
    name = f"victim_{uuid.uuid4().hex[:8]}"
    victim = f"{pg_url}&application_name={name}"
    proc = _start_beside_a_clean_run(tmp_path, 16, clean, pg_url, victim, command)
    engine = open_engine(pg_url)
    try:
        killed = 0
        for round_ in range(kills):
            wait_for_succeeded(engine, proc, 3 + 6 * round_)
            killed += _terminate(name) if proc.poll() is None else 0
        out, err = proc.communicate(timeout=120)
        assert killed >= 1, "the process ended before a connection could be terminated"
        statuses = key_statuses(engine)
        assert "running" not in statuses
        outcome = run_rows(engine)[0]["outcome"]
        if proc.returncode == 0:  # reconnected and went on (pre-ping replaces idle ones)
            assert outcome == "succeeded" and set(statuses) == {"succeeded"}
        else:  # or the work in flight failed (partial) or the run ended failed; none running
            failed = [e for e in json_lines(out) if e["level"] == "error"]
            assert (proc.returncode, outcome) in ((1, "partial"), (3, "failed")), (err, failed)
        again = Cli.on(pg_url)(*command)
        assert again.exit_code == 0, again.output
    finally:
        engine.dispose()
    assert digest(pg_url) == digest(clean)


def test_a_transaction_whose_connection_is_killed_runs_again_once(pg_url: str) -> None:
    engine = open_engine(pg_url, workers=2)
    attempts: list[int] = []

    @reconnecting
    def count_runs(engine: Engine) -> int:
        with translate_errors(engine, "count runs in"), engine.begin() as conn:
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
            attempts.append(pid)
            if len(attempts) == 1:  # the server drops this connection mid-transaction
                with psycopg.connect(ADMIN, autocommit=True) as admin:
                    admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            return int(conn.execute(select(func.count()).select_from(t.runs)).scalar_one())

    try:
        assert count_runs(engine) == 0
        assert len(attempts) == 2 and attempts[0] != attempts[1]  # a new connection
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- Cube refuses


def _cube_run(db_url: str, tmp_path: Path, fake: FakeCube, dims: list[tuple[str, str]]) -> Any:
    catalog = write_cube_catalog(tmp_path / "c.yaml", dims, metrics=("a", "b", "c", "d"))
    with fake.serve() as url:
        cli = Cli(env=cube_env(db_url, url, FULCRUM_SYNC_WORKERS="4"))
        assert cli("catalog", "load", str(catalog)).exit_code == 0
        started = time.monotonic()
        result = cli("sync", "--grain", "day", "--period", PERIOD)
        return result, time.monotonic() - started


def test_a_refused_secret_exits_2_at_once_and_sends_one_request(
    sqlite_url: str, tmp_path: Path
) -> None:
    fake = FakeCube(daily_data, cubes=CUBES, secret="the-server-knows-another-secret-00000")
    result, seconds = _cube_run(sqlite_url, tmp_path, fake, [("region", "orders.region")])
    assert result.exit_code == 2, result.output
    assert seconds < 2
    assert len(fake.requests) == 1  # checked once for the tenant, never retried
    finished = json_lines(result.stdout)[-1]
    assert finished["event"] == "sync finished" and finished["level"] == "error"
    assert finished["outcome"] == "refused"
    assert "FULCRUM_SYNC_CUBE_API_SECRET" in finished["error"]
    engine = open_engine(sqlite_url)
    try:
        assert [r["outcome"] for r in run_rows(engine) if r["command"] == "sync"] == ["refused"]
        statuses = key_statuses(engine)
        assert "running" not in statuses and "pending" not in statuses
    finally:
        engine.dispose()


def test_a_query_rejected_everywhere_is_exit_1_not_3(sqlite_url: str, tmp_path: Path) -> None:
    fake = FakeCube(daily_data, cubes=CUBES)
    result, _ = _cube_run(sqlite_url, tmp_path, fake, [("bogus", "orders.no_such_member")])
    # the base series of each metric loads; every dimension query is rejected with HTTP 400
    assert result.exit_code == 1, result.output
    finished = json_lines(result.stdout)[-1]
    assert finished["outcome"] == "partial" and finished["level"] == "error"

    bad = write_cube_catalog(tmp_path / "bad.yaml", [], metrics=("a", "b"))
    bad.write_text(bad.read_text().replace("orders.total_amount", "orders.no_such_measure"))
    with fake.serve() as url:
        cli = Cli(env=cube_env(sqlite_url, url))
        assert cli("catalog", "load", str(bad)).exit_code == 0
        every = cli("sync", "--grain", "day", "--period", PERIOD)
    assert every.exit_code == 1, every.output  # all of them rejected: still 1
    assert json_lines(every.stdout)[-1]["outcome"] == "partial"


def test_an_unreachable_cube_logs_errors_with_their_fields(sqlite_url: str, tmp_path: Path) -> None:
    catalog = write_cube_catalog(tmp_path / "c.yaml", [], metrics=("a", "b"))
    cli = Cli(
        env=cube_env(sqlite_url, f"http://127.0.0.1:{closed_port()}", FULCRUM_SYNC_CUBE_RETRIES="1")
    )
    assert cli("catalog", "load", str(catalog)).exit_code == 0
    result = cli("sync", "--grain", "day", "--period", PERIOD)
    assert result.exit_code == 3, result.output
    lines = json_lines(result.stdout)
    errors = [line for line in lines if line["level"] == "error"]
    failed = {c for c in lines[-1]["failed"]}
    assert failed and {f"{e['tenant']}::{e['metric']}" for e in errors if e["tenant"]} >= failed
    assert lines[-1]["event"] == "sync finished" and lines[-1] in errors
    during = [line for line in lines[:-1] if line["level"] in ("warning", "error")]
    assert any(line["logger"].startswith("fulcrum_sync.sources") for line in during)
    for line in during:
        assert all(line[k] for k in ("run_id", "tenant", "metric", "grain")), line


# --------------------------------------------------------------------------- the rest


def test_backfill_in_json_mode_writes_only_json_lines_to_stdout(sqlite_url: str) -> None:
    result = Cli.on(sqlite_url)(
        "--log-format",
        "json",
        "backfill",
        "--grain",
        "day",
        "--start",
        "2025-09-25",
        "--end",
        PERIOD,
        "--tenant",
        "initech",
    )
    assert result.exit_code == 0, result.output
    lines = json_lines(result.stdout)  # every line parses
    assert lines[-1]["event"] == "backfill finished"
    assert "backfill " in result.stderr and "resume with --resume" in result.stderr


def test_an_unexpected_error_is_one_line_and_the_run_is_recorded_failed(sqlite_url: str) -> None:
    cli = Cli.on(sqlite_url)

    class Exploding(frozenset[Any]):
        """A pattern's grains whose membership test crashes: an error outside any isolation."""

        def __contains__(self, item: object) -> bool:
            raise RuntimeError("the pattern fell over")

    broken = dataclasses.replace(REGISTRY["performance_status"], grains=Exploding())
    deps = Deps(patterns={"performance_status": broken})
    result = cli(*SYNC, "--tenant", "acme", "--workers", "1", deps=deps)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1] == (
        "Error: internal error: RuntimeError: the pattern fell over "
        "(run with --verbose for the traceback)"
    )
    engine = open_engine(sqlite_url)
    try:
        runs_ = [r for r in run_rows(engine) if r["command"] == "sync"]
        assert [r["outcome"] for r in runs_] == ["failed"]
        assert "the pattern fell over" in runs_[0]["summary"]["error"]
        assert "running" not in key_statuses(engine)
    finally:
        engine.dispose()
    verbose = cli("--verbose", *SYNC, "--tenant", "acme", "--force", deps=deps)
    assert verbose.exit_code == 1 and "Traceback" in verbose.stderr


def test_a_backfill_of_older_periods_never_moves_sync_status_back(db_url: str) -> None:
    cli = Cli.on(db_url)
    assert cli(*SYNC, "--tenant", "initech", "--no-patterns").exit_code == 0
    backfill = cli(
        "backfill",
        "--grain",
        "day",
        "--start",
        "2025-08-01",
        "--end",
        "2025-08-20",
        "--tenant",
        "initech",
        "--no-patterns",
    )
    assert backfill.exit_code == 0, backfill.output
    engine = open_engine(db_url)
    try:
        with engine.connect() as conn:
            periods = {r[0] for r in conn.execute(select(t.metric_sync_status.c.period))}
    finally:
        engine.dispose()
    assert periods == {date.fromisoformat(PERIOD)}


def test_the_summary_duration_is_wall_time(sqlite_url: str) -> None:
    started = time.monotonic()
    result = Cli.on(sqlite_url)("--log-format", "json", *SYNC, "--workers", "2")
    wall = time.monotonic() - started
    assert result.exit_code == 0, result.output
    lines = json_lines(result.stdout)
    contexts = [line["duration"] for line in lines if line["event"] == "context synced"]
    finished = lines[-1]
    assert max(contexts) <= finished["duration"] <= wall
    engine = open_engine(sqlite_url)
    try:
        run = run_rows(engine)[-1]
    finally:
        engine.dispose()
    recorded = (run["finished_at"] - run["started_at"]).total_seconds()
    assert abs(recorded - finished["duration"]) < 0.5
