"""`fulcrum-sync backfill`: plans, fetch efficiency, patterns per period, resume, shards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from cli_invoke import Cli, fulcrum_argv, process_env
from process_moments import held_after
from sqlalchemy import func, select
from typer.testing import CliRunner

from fulcrum_sync.catalog import active_contexts, demo_catalog
from fulcrum_sync.cli import app
from fulcrum_sync.domain import Grain
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import open_engine

runner = CliRunner()


def backfill(env: dict[str, str], *args: str) -> tuple[int, dict[str, Any]]:
    result = Cli(env=env)("backfill", "--json", *args)
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


def scalar(url: str, query: Any) -> Any:
    engine = open_engine(url)
    with engine.connect() as conn:
        value = conn.execute(query).scalar_one()
    engine.dispose()
    return value


@pytest.mark.slow
def test_quarter_of_days_on_the_demo(sqlite_url: str):
    # SQLite only: the same code path runs on PostgreSQL in the shard and resume tests.
    db_url = sqlite_url
    cli_env = {"FULCRUM_SYNC_DATABASE_URL": db_url, "FULCRUM_SYNC_LOG_FORMAT": "rich"}
    code, out = backfill(
        {**cli_env, "FULCRUM_SYNC_WORKERS": "2"},
        "--grain",
        "day",
        "--start",
        "2025-07-01",
        "--end",
        "2025-09-30",
    )
    contexts = active_contexts(demo_catalog(), Grain.DAY)
    assert code == 0 and out["outcome"] == "succeeded"
    assert len(out["contexts"]) == len(contexts) and out["periods"] == 92
    assert out["done"] == out["sync_keys"] + out["pattern_keys"]
    assert out["failed"] == 0
    # One query per series for the whole range, not one lookback window per period.
    assert out["source_queries"] == sum(1 + len(c.metric.dimensions) for c in contexts)
    assert out["rows_fetched"] <= 1.1 * out["rows_in_range"]
    assert out["rows_in_range"] > 0
    # Every context has base rows for all 92 days, and pattern results for each period.
    base_days = scalar(
        db_url,
        select(func.count(func.distinct(t.metric_time_series.c.date))),
    )
    assert base_days == 92
    periods_with_results = scalar(
        db_url, select(func.count(func.distinct(t.pattern_results.c.analysis_period)))
    )
    assert periods_with_results == 92
    stored = scalar(db_url, select(func.count()).select_from(t.pattern_results))
    assert stored == out["pattern_keys"]
    # A rerun of the same range is the same backfill and does nothing again.
    _, again = backfill(cli_env, "--grain", "day", "--start", "2025-07-01", "--end", "2025-09-30")
    assert again["backfill_id"] == out["backfill_id"]
    assert again["done"] == 0 and again["already_done"] == out["done"]


def test_patterns_use_data_as_of_each_period(cli_env: dict[str, str], db_url: str):
    code, _out = backfill(
        cli_env,
        "--grain",
        "day",
        "--start",
        "2025-07-20",
        "--end",
        "2025-07-31",
        "--tenant",
        "acme",
        "--metric",
        "new_revenue",
    )
    assert code == 0
    engine = open_engine(db_url)
    p = t.pattern_results.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(p.analysis_period, p.window_end, p.result).where(
                p.pattern == "historical_performance"
            )
        ).all()
    engine.dispose()
    assert len(rows) == 12
    for period, window_end, _ in rows:
        assert str(window_end) <= str(period)  # never looks past its own period


@pytest.mark.parametrize(
    ("grain", "start", "end", "periods"),
    [("week", "2025-W27", "2025-W40", 14), ("month", "2025-07", "2025-12", 6)],
)
def test_week_and_month_ranges(cli_env, grain: str, start: str, end: str, periods: int):
    code, out = backfill(
        cli_env, "--grain", grain, "--start", start, "--end", end, "--tenant", "initech"
    )
    assert code == 0
    assert out["periods"] == periods
    assert out["done"] == out["sync_keys"] + out["pattern_keys"]
    if grain == "week":
        assert out["first_period"] == "2025-W27 (2025-06-30)"
    status = runner.invoke(app, ["status", "--json"], env=cli_env)
    shown = json.loads(status.stdout)["backfills"]
    assert [(b["backfill_id"], b["done"], b["total"]) for b in shown] == [
        (out["backfill_id"], out["done"], out["done"])
    ]


def test_dry_run_prints_plan_and_writes_nothing(cli_env: dict[str, str], db_url: str):
    result = runner.invoke(
        app,
        [
            "backfill",
            "--grain",
            "day",
            "--start",
            "2025-07-01",
            "--end",
            "2025-07-31",
            "--dry-run",
            "--json",
        ],
        env=cli_env,
    )
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["periods"] == 31
    assert plan["sync_keys"] == 31 * len(plan["contexts"])
    assert plan["estimated_source_queries"] > 0
    for table in (t.runs, t.run_items, t.backfills, t.contexts, t.metric_time_series):
        assert scalar(db_url, select(func.count()).select_from(table)) == 0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--start", "2025-09-30", "--end", "2025-07-01"], "after --end"),
        (["--start", "2025-07-01", "--end", "2025-07-05", "--shard", "3/2"], "'3/2'"),
        (["--start", "2025-06-01", "--end", "2025-07-05"], "history start"),
        (["--start", "2025-07-01"], "--end"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(cli_env, db_url, args: list[str], needle: str):
    result = runner.invoke(app, ["backfill", "--grain", "day", *args], env=cli_env)
    assert result.exit_code == 2, result.output
    assert needle in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert scalar(db_url, select(func.count()).select_from(t.runs)) == 0


def test_unknown_resume_id(cli_env: dict[str, str]):
    result = runner.invoke(app, ["backfill", "--grain", "day", "--resume", "nope"], env=cli_env)
    assert result.exit_code == 2
    assert "'nope'" in result.output


def test_shard_defaults_from_indexed_job_env(cli_env: dict[str, str]):
    env = {**cli_env, "JOB_COMPLETION_INDEX": "1", "FULCRUM_SYNC_SHARD_COUNT": "3"}
    os.environ.pop("JOB_COMPLETION_INDEX", None)
    result = runner.invoke(
        app,
        [
            "backfill",
            "--grain",
            "day",
            "--start",
            "2025-07-01",
            "--end",
            "2025-07-02",
            "--dry-run",
            "--json",
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["shard"] == "1/3"


# ----------------------------------------------------------------- real processes


RANGE = [
    "backfill",
    "--grain",
    "day",
    "--start",
    "2025-07-01",
    "--end",
    "2025-09-30",
    "--tenant",
    "initech",
    "--workers",
    "1",
]


@pytest.mark.slow
def test_sigkill_halfway_then_resume_by_id(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'bf.db'}"
    env = process_env(url)
    proc = subprocess.Popen(
        fulcrum_argv(*RANGE), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    engine = open_engine(url)
    total = None
    deadline = time.monotonic() + 180
    while not total and time.monotonic() < deadline and proc.poll() is None:
        with engine.connect() as conn:  # the backfill's size, recorded before its first key
            total = conn.execute(select(t.backfills.c.total_items)).scalar()
        time.sleep(0.01)
    assert total, "the backfill recorded no size before it ended"
    with held_after(url, proc, total // 2):  # its writes held: it cannot finish meanwhile
        assert proc.poll() is None, "backfill finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate()
    backfill_id = err.split("resume with --resume ")[1].split()[0]

    resumed = subprocess.run(
        fulcrum_argv(*RANGE[:3], "--resume", backfill_id, "--json"),
        env=env,
        capture_output=True,
        text=True,
    )
    assert resumed.returncode == 0, resumed.stderr
    out = json.loads(resumed.stdout)
    assert out["backfill_id"] == backfill_id
    assert out["already_done"] >= total // 2
    assert out["done"] + out["already_done"] == total

    with engine.connect() as conn:
        items = conn.execute(
            select(
                t.run_items.c.status,
                t.run_items.c.attempts,
                t.run_items.c.grain,
                t.run_items.c.period,
                t.run_items.c.tenant,
                t.run_items.c.metric_id,
            )
        ).all()
        assert len(items) == total and {i.status for i in items} == {"succeeded"}
        # Each key was claimed once, except those the killed process held at that moment:
        # one sync key, or the pattern keys of one context and period (claimed together).
        again = {(i.grain, i.period, i.tenant, i.metric_id) for i in items if i.attempts > 1}
        assert len(again) <= 1
        assert all(i.attempts <= 2 for i in items)
        b = t.metric_time_series.c
        rows = conn.execute(select(func.count()).select_from(t.metric_time_series)).scalar_one()
        distinct = conn.execute(
            select(func.count()).select_from(
                select(b.tenant_id, b.metric_id, b.date).distinct().subquery()
            )
        ).scalar_one()
        assert rows == distinct == 3 * 92
    engine.dispose()


@pytest.mark.slow
def test_two_shards_split_the_plan(pg_url: str):
    env = process_env(pg_url)
    args = [
        "backfill",
        "--grain",
        "day",
        "--start",
        "2025-07-01",
        "--end",
        "2025-07-31",
        "--no-patterns",
        "--json",
    ]
    procs = [
        subprocess.Popen(
            fulcrum_argv(*args, "--shard", f"{i}/2"),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        outs.append(json.loads(out))
    assert outs[0]["backfill_id"] == outs[1]["backfill_id"]
    halves = [set(o["contexts"]) for o in outs]
    assert all(o["shard"] for o in outs)
    done = [o["done"] for o in outs]
    assert sum(done) == outs[0]["sync_keys"]  # together the whole plan, each key once
    assert all(d > 0 for d in done)
    engine = open_engine(pg_url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(t.run_items.c.run_key, t.run_items.c.attempts, t.run_items.c.run_id)
        ).all()
    engine.dispose()
    assert {a for _, a, _ in rows} == {1}
    by_run: dict[str, set[str]] = {}
    for key, _, run_id in rows:
        by_run.setdefault(run_id, set()).add(key.rsplit(":", 2)[-2] + "::" + key.rsplit("::")[-1])
    assert len(by_run) == 2
    first, second = by_run.values()
    assert first.isdisjoint(second)
    assert halves[0] == halves[1]  # each process reports the whole plan's contexts
