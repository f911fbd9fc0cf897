"""A simulated year of scheduled runs: the run history stays bounded by retention.

Every simulated day (``FULCRUM_SYNC_TODAY`` stepping one day at a time) runs what the day's
CronJob runs, ``sync --grain day --catch-up --cache-load``, and on Mondays the week job too,
on a small catalog (one tenant, two metrics with dimensions and patterns) in a SQLite file.
Each sync prunes after its work as ``FULCRUM_SYNC_RETENTION_DAYS`` says (default 90 here).
Row counts per table are printed every ``--every`` days; with ``--retention-days 0`` the same
year shows the unbounded growth.

Run records are stamped by the wall clock; the benchmark moves each day's run rows to the
simulated day, as a year of real days would have stamped them.

    python -m benchmarks.retention_year [--days 365] [--every 30] [--retention-days 90]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select, update
from typer.testing import CliRunner

from fulcrum_sync.cli import app
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import open_engine

START = date(2025, 7, 2)  # the first day with a complete period after the history start
TABLES = (
    t.runs,
    t.run_items,
    t.pattern_results,
    t.cache_loads,
    t.metric_time_series,
    t.metric_dimensional_time_series,
)
CATALOG = """\
tenants:
  - tenant_id: 1
    identifier: acme
    name: Acme
    metrics:
      - metric_id: orders
        label: Orders
        measure: orders.count
        time_dimension: orders.created_at
        dimensions:
          - {dimension_id: region, member: orders.region}
        grains: [day, week]
        patterns: [performance_status, historical_performance, data_quality]
      - metric_id: new_revenue
        label: New revenue
        measure: orders.total_amount
        time_dimension: orders.created_at
        dimensions:
          - {dimension_id: channel, member: orders.channel}
        grains: [day, week]
        patterns: [performance_status, dimension_analysis]
"""


def _counts(url: str) -> dict[str, int]:
    engine = open_engine(url, migrate=False)
    try:
        with engine.connect() as conn:
            return {
                table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                for table in TABLES
            }
    finally:
        engine.dispose()


def _stamp_runs(url: str, since: datetime, day: date) -> None:
    """Move the run rows recorded since ``since`` (wall clock) to the simulated ``day``."""
    moment = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=10)
    engine = open_engine(url, migrate=False)
    try:
        with engine.begin() as conn:
            c = t.runs.c
            conn.execute(
                update(t.runs)
                .where(c.started_at >= since)
                .values(started_at=moment, finished_at=moment)
            )
    finally:
        engine.dispose()


def simulate(days: int, every: int, retention_days: int) -> list[tuple[date, dict[str, int]]]:
    """Run ``days`` simulated days; return the row counts at every ``every``-th day."""
    runner = CliRunner()
    points: list[tuple[date, dict[str, int]]] = []
    with tempfile.TemporaryDirectory(prefix="fulcrum-retention-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'state.db'}"
        env = {
            "FULCRUM_SYNC_DATABASE_URL": url,
            "FULCRUM_SYNC_SOURCE": "demo",
            "FULCRUM_SYNC_LOG_FORMAT": "json",
            "FULCRUM_SYNC_WORKERS": "1",
            "FULCRUM_SYNC_RETENTION_DAYS": str(retention_days),
        }
        catalog = Path(tmp) / "catalog.yaml"
        catalog.write_text(CATALOG)
        loaded = runner.invoke(app, ["catalog", "load", str(catalog)], env=env)
        assert loaded.exit_code == 0, loaded.output
        for n in range(days):
            today = START + timedelta(days=n)
            day_env = {**env, "FULCRUM_SYNC_TODAY": today.isoformat()}
            since = datetime.now(UTC) - timedelta(seconds=1)
            jobs = [["sync", "--grain", "day", "--catch-up", "--cache-load"]]
            if today.weekday() == 0:
                jobs.append(["sync", "--grain", "week", "--catch-up", "--cache-load"])
            for job in jobs:
                result = runner.invoke(app, job, env=day_env)
                assert result.exit_code == 0, (today, job, result.output[-2000:])
            _stamp_runs(url, since, today)
            if (n + 1) % every == 0 or n + 1 == days:
                points.append((today, _counts(url)))
                print(f"  {today} done ({n + 1} days)", file=sys.stderr, flush=True)
    return points


def print_table(points: list[tuple[date, dict[str, int]]]) -> None:
    names = [table.name for table in TABLES]
    print("| day | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for day, counts in points:
        print(f"| {day} | " + " | ".join(f"{counts[n]:,}" for n in names) + " |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--every", type=int, default=30)
    parser.add_argument("--retention-days", type=int, default=90)
    args = parser.parse_args(argv)
    started = time.monotonic()
    points = simulate(args.days, args.every, args.retention_days)
    print(f"{args.days} simulated days, retention {args.retention_days} days:")
    print_table(points)
    print(f"({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
