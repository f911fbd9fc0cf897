"""``state prune`` and the prune after a scheduled sync: old run history goes, series stay."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from cli_invoke import Cli
from sqlalchemy import func, select, update

from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import open_engine

TODAY = date(2025, 12, 1)


@pytest.fixture
def cli(cli: Cli) -> Cli:
    return cli.but(today=TODAY)


def rows(url: str, query: Any) -> list[tuple[Any, ...]]:
    engine = open_engine(url, migrate=False)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(query)]
    finally:
        engine.dispose()


def key_periods(url: str, kind: str) -> set[date]:
    c = t.run_items.c
    found = rows(url, select(c.period).where(c.kind == kind).distinct())
    return {p if isinstance(p, date) else date.fromisoformat(str(p)[:10]) for (p,) in found}


def series(url: str) -> list[tuple[Any, ...]]:
    s = t.metric_time_series.c
    return rows(url, select(t.metric_time_series).order_by(s.tenant_id, s.metric_id, s.date))


def sync_days_ago(cli: Cli, *days: int) -> None:
    for n in days:
        result = cli("sync", "-g", "day", "-t", "acme", today=TODAY - timedelta(days=n))
        assert result.exit_code == 0, result.output


def test_prune_removes_old_periods_keys_keeps_yesterdays_and_every_series_row(
    cli: Cli, db_url: str
) -> None:
    sync_days_ago(cli, 20, 10, 1)  # periods 21, 11 and 2 days before TODAY
    old, older, recent = (TODAY - timedelta(days=n) for n in (11, 21, 2))
    assert key_periods(db_url, "sync") == {older, old, recent}
    before = series(db_url)
    results_before = rows(db_url, select(func.count()).select_from(t.pattern_results))[0][0]

    preview = cli("state", "prune", "--keep-days", "5", "--dry-run")
    assert preview.exit_code == 0, preview.output
    assert "run_items" in preview.stdout and "Dry run: nothing was changed." in preview.stdout
    assert key_periods(db_url, "sync") == {older, old, recent}

    pruned = cli("state", "prune", "--keep-days", "5", "--yes")
    assert pruned.exit_code == 0, pruned.output
    assert "Pruned history before 2025-11-26" in pruned.stdout
    assert key_periods(db_url, "sync") == {recent}
    assert key_periods(db_url, "pattern") == {recent}
    assert series(db_url) == before  # metric_time_series unchanged, row for row
    p = t.pattern_results.c
    kept = rows(db_url, select(p.analysis_period).distinct())
    assert {str(a)[:10] for (a,) in kept} == {recent.isoformat()}  # only the latest result
    results_after = rows(db_url, select(func.count()).select_from(t.pattern_results))[0][0]
    assert 0 < results_after < results_before

    recorded = json.loads(cli("runs", "--command", "state prune", "--json").stdout)
    assert len(recorded) == 1 and recorded[0]["outcome"] == "succeeded"
    assert recorded[0]["summary"]["deleted"]["run keys"] > 0

    again = cli("state", "prune", "--keep-days", "5", "--yes")
    assert again.exit_code == 0 and "Nothing to prune before 2025-11-26." in again.stdout

    # The next plain sync still knows where each context stands: nothing is re-fetched FULL.
    nxt = cli("sync", "-g", "day", "-t", "acme", "--json", "--no-patterns")
    assert nxt.exit_code == 0, nxt.output
    types = {s["sync_type"] for c in json.loads(nxt.stdout)["contexts"] for s in c["series"]}
    assert types == {"INCREMENTAL"}


def test_prune_in_small_batches_leaves_a_live_runs_key_and_declining_changes_nothing(
    cli: Cli, db_url: str
) -> None:
    sync_days_ago(cli, 20, 10, 1)
    c = t.run_items.c
    live = datetime.now(UTC) + timedelta(hours=1)
    engine = open_engine(db_url, migrate=False)
    with engine.begin() as conn:  # a running process holds one old key
        held_key = conn.execute(
            select(c.run_key).where(c.kind == "sync").order_by(c.period).limit(1)
        ).scalar_one()
        conn.execute(
            update(t.run_items)
            .where(c.run_key == held_key)
            .values(status="running", lease_owner="other", lease_expires_at=live)
        )
    engine.dispose()

    declined = cli("state", "prune", "--keep-days", "5", input="n\n")
    assert declined.exit_code == 1, declined.output
    assert "Aborted: nothing was changed." in declined.stdout
    assert "1 old run keys are held by a running process" in declined.stdout

    total = rows(db_url, select(func.count()).select_from(t.run_items))[0][0]
    pruned = cli("state", "prune", "--keep-days", "5", "--json", "--yes")
    assert pruned.exit_code == 0, pruned.output
    payload = json.loads(pruned.stdout)
    assert payload["held"] == 1 and payload["applied"] is True
    remaining = {r for (r,) in rows(db_url, select(c.run_key))}
    assert held_key in remaining
    assert len(remaining) == total - payload["deleted"]["run keys"]


def test_a_scheduled_sync_prunes_after_its_work_as_retention_days_says(
    cli: Cli, db_url: str
) -> None:
    sync_days_ago(cli, 20, 10)
    old = TODAY - timedelta(days=21)
    sync_days_ago(cli.but(env={"FULCRUM_SYNC_RETENTION_DAYS": "0"}), 1)  # retention off
    assert old in key_periods(db_url, "sync")
    synced = cli("sync", "-g", "day", "-t", "acme", env={"FULCRUM_SYNC_RETENTION_DAYS": "15"})
    assert synced.exit_code == 0, synced.output
    assert old not in key_periods(db_url, "sync")
    assert TODAY - timedelta(days=11) in key_periods(db_url, "sync")  # within 15 days: kept
    recorded = json.loads(cli("runs", "--command", "state prune", "--json").stdout)
    assert [r["arguments"]["keep_days"] for r in recorded] == [15]


def test_prune_refuses_a_bad_keep_days(cli: Cli, db_url: str) -> None:
    result = cli("state", "prune", "--keep-days", "0", "--yes")
    assert result.exit_code == 2
    assert "invalid --keep-days 0" in result.output


def test_a_prune_that_fails_after_a_sync_is_a_warning_and_the_sync_still_succeeds(
    cli: Cli, sqlite_url: str
) -> None:
    cli = cli.but(env={"FULCRUM_SYNC_DATABASE_URL": sqlite_url, "FULCRUM_SYNC_LOG_FORMAT": "json"})
    sync_days_ago(cli, 20)
    engine = open_engine(sqlite_url, migrate=False)
    with engine.begin() as conn:  # a damaged database: the prune's reads fail
        conn.exec_driver_sql("DROP TABLE backfill_items")
    engine.dispose()
    retention = {"FULCRUM_SYNC_RETENTION_DAYS": "5"}
    result = cli("sync", "-g", "day", "-t", "acme", "--no-patterns", env=retention)
    assert result.exit_code == 0, result.output
    warning = next(
        json.loads(line)
        for line in result.stdout.splitlines()
        if "could not prune the run history" in line
    )
    assert warning["level"] == "warning" and "backfill_items" in warning["error"]
    assert TODAY - timedelta(days=21) in key_periods(sqlite_url, "sync")  # nothing deleted


def test_the_simulated_year_benchmark_runs_and_retention_bounds_the_history() -> None:
    from benchmarks.retention_year import simulate

    kept = simulate(days=12, every=6, retention_days=2)
    unbounded = simulate(days=12, every=6, retention_days=0)
    assert [day for day, _ in kept] == [date(2025, 7, 7), date(2025, 7, 13)]
    (_, first), (_, last) = kept
    assert last["run_items"] <= first["run_items"]  # bounded: no growth after the window
    assert last["run_items"] < unbounded[-1][1]["run_items"]
    assert last["metric_time_series"] == unbounded[-1][1]["metric_time_series"]  # series kept
