"""``state show`` and ``state reset`` on the demo source, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from cli_invoke import Cli
from sqlalchemy import func, select

from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import open_engine

P1, P2 = "2025-09-30", "2025-10-01"
ACME_DAY = ["acme::active_users", "acme::new_revenue", "acme::orders"]


def sync(cli: Cli, period: str, *args: str) -> dict[str, Any]:
    result = cli("sync", "-g", "day", "-t", "acme", "--period", period, "--json", *args)
    assert result.exit_code == 0, result.output
    return result.json()


def series_types(payload: dict[str, Any]) -> dict[str, set[str]]:
    return {c["context"]: {s["sync_type"] for s in c["series"]} for c in payload["contexts"]}


def count(url: str, table: Any, *where: Any) -> int:
    engine = open_engine(url, migrate=False)
    try:
        with engine.connect() as conn:
            query = select(func.count()).select_from(table).where(*where)
            return int(conn.execute(query).scalar_one())
    finally:
        engine.dispose()


def test_reset_sync_status_makes_that_metric_full_and_leaves_the_others_incremental(
    cli: Cli, db_url: str
) -> None:
    sync(cli, P1, "--no-patterns")
    reset = cli(
        *("state", "reset", "--tenant", "acme", "--metric", "orders", "--grain", "day"),
        *("--what", "sync-status", "--yes"),
    )
    assert reset.exit_code == 0, reset.output
    assert "metric_sync_status" in reset.stdout
    assert "The next sync of these series is FULL." in reset.stdout
    types = series_types(sync(cli, P2, "--no-patterns"))
    assert types["acme::orders"] == {"FULL"}
    assert types["acme::new_revenue"] == {"INCREMENTAL"}
    assert types["acme::active_users"] == {"INCREMENTAL"}
    recorded = json.loads(cli("runs", "--command", "state reset", "--json").stdout)
    assert len(recorded) == 1 and recorded[0]["outcome"] == "succeeded"
    assert recorded[0]["summary"]["deleted"]["sync status"] == 3  # base, region, channel


def test_reset_run_keys_of_a_period_makes_sync_and_patterns_run_again_without_force(
    cli: Cli, db_url: str
) -> None:
    sync(cli, P1, "--metric", "orders")  # patterns on: 3 pattern keys
    sync(cli, P1, "--no-patterns")  # the other two contexts
    sync(cli, P2, "--no-patterns")
    again = sync(cli, P1, "--no-patterns")
    assert {c["status"] for c in again["contexts"]} == {"skipped"}

    reset = cli("state", "reset", "--what", "run-keys", "--from", P1, "--to", P1, "--yes")
    assert reset.exit_code == 0, reset.output
    sync_keys = t.run_items.c.kind == "sync"
    assert count(db_url, t.run_items, sync_keys, t.run_items.c.period == date(2025, 10, 1)) == 3

    rerun = sync(cli, P1, "--no-patterns")
    assert {c["context"]: c["status"] for c in rerun["contexts"]} == dict.fromkeys(
        ACME_DAY, "succeeded"
    )
    patterns = cli("patterns", "-g", "day", "-p", P1, "-t", "acme", "-m", "orders", "--json")
    assert patterns.exit_code == 0, patterns.output
    statuses = {p["status"] for c in json.loads(patterns.stdout)["contexts"] for p in c["patterns"]}
    assert statuses == {"succeeded"}  # not "done": their keys were forgotten too


def test_state_show_reports_series_keys_patterns_and_missing_results(cli: Cli, db_url: str) -> None:
    sync(cli, P1, "--metric", "orders")
    sync(cli, P2, "--metric", "orders", "--no-patterns")
    shown = cli("state", "show", "-t", "acme", "-m", "orders", "-g", "day", "--json")
    assert shown.exit_code == 0, shown.output
    (ctx,) = json.loads(shown.stdout)["contexts"]
    assert ctx["context"] == "acme::orders" and ctx["active"] is True
    assert {(s["dimension"], s["sync_type"], s["period"]) for s in ctx["series"]} == {
        (None, "INCREMENTAL", P2),
        ("region", "INCREMENTAL", P2),
        ("channel", "INCREMENTAL", P2),
    }
    keys = {(k["kind"], k["status"]): k["count"] for k in ctx["run_keys"]}
    assert keys == {("sync", "succeeded"): 2, ("pattern", "succeeded"): 3}
    patterns = {p["pattern"]: p for p in ctx["patterns"]}
    assert set(patterns) == {"performance_status", "historical_performance", "data_quality"}
    for p in patterns.values():
        assert p["present"] == {"succeeded": 1} and p["latest_period"] == P1
        assert p["missing"] == [P2]  # synced with --no-patterns

    table = cli("state", "show", "-t", "acme", "-m", "orders", "-g", "day")
    assert table.exit_code == 0, table.output
    text = " ".join(table.stdout.split())
    assert "acme::orders day" in text and "(base)" in text and "region" in text
    assert "sync 2 succeeded (2025-09-30..2025-10-01)" in text
    assert "performance_status 1 succeeded, 1 missing (2025-10-01)" in text


def test_reset_asks_first_and_a_no_changes_nothing(cli: Cli, db_url: str) -> None:
    sync(cli, P1, "--no-patterns")
    args = ("state", "reset", "-t", "acme", "--what", "series")
    values_before = count(db_url, t.metric_time_series)
    declined = cli(*args, input="n\n")
    assert declined.exit_code == 1, declined.output
    assert "metric_time_series" in declined.stdout and "Aborted: nothing was changed" in (
        declined.stdout
    )
    assert count(db_url, t.metric_time_series) == values_before > 0

    dry = cli(*args, "--dry-run")
    assert dry.exit_code == 0 and "Dry run: nothing was changed" in dry.stdout
    assert count(db_url, t.metric_time_series) == values_before

    accepted = cli(*args, input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert count(db_url, t.metric_time_series) == 0
    assert count(db_url, t.metric_dimensional_time_series) == 0
    assert count(db_url, t.metric_sync_status) == 0  # dropped values come back with FULL
    assert count(db_url, t.run_items) == 3  # run keys were not asked for


def test_reset_of_one_dimension_keeps_the_base_series(cli: Cli, db_url: str) -> None:
    sync(cli, P1, "--no-patterns")
    d = t.metric_dimensional_time_series.c
    others = count(db_url, t.metric_dimensional_time_series, d.dimension_name != "region")
    result = cli("state", "reset", "-t", "acme", "-d", "region", "--what", "all", "--yes")
    assert result.exit_code == 0, result.output
    assert count(db_url, t.metric_dimensional_time_series, d.dimension_name == "region") == 0
    assert count(db_url, t.metric_dimensional_time_series, d.dimension_name != "region") == others
    assert count(db_url, t.metric_time_series) > 0
    assert count(db_url, t.run_items) == 3  # sync keys cover every series: left alone
    s = t.metric_sync_status.c
    assert count(db_url, t.metric_sync_status, s.dimension == "region") == 0
    assert count(db_url, t.metric_sync_status, s.dimension == "") == 3


def test_run_keys_held_by_a_live_process_are_left_alone(cli: Cli, db_url: str) -> None:
    sync(cli, P1, "--no-patterns")
    url = db_url
    engine = open_engine(url)
    key = "sync:day:2025-09-30:acme::orders"
    with engine.begin() as conn:  # another pod is working on it right now
        conn.execute(
            t.run_items.update()
            .where(t.run_items.c.run_key == key)
            .values(
                status="running",
                lease_owner="other-host:1:abcd",
                lease_expires_at=datetime.now(UTC) + timedelta(minutes=5),
            )
        )
    engine.dispose()
    result = cli("state", "reset", "-t", "acme", "--what", "run-keys", "--yes", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["held"] == 1 and payload["deleted"] == {"sync keys": 2, "pattern keys": 0}
    assert count(url, t.run_items) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--what", "run-keys", "--yes"], "refusing to reset the whole state database"),
        (["--what", "caches", "-t", "acme"], "invalid --what 'caches': expected one of"),
        (["-t", "acme"], "missing --what"),
        (["--what", "all", "--all", "-t", "acme"], "--all resets everything"),
        (["--what", "sync-status", "--from", "2025-09-30"], "kept per series, not per period"),
        (["--what", "series", "--from", "2025-10-01", "--to", "2025-09-01"], "is before --from"),
        (["--what", "series", "-t", "nobody", "--yes"], "unknown tenant 'nobody'"),
        (["--what", "series", "-t", "acme", "-d", "colour", "--yes"], "unknown dimension"),
        (["--what", "series", "-t", "acme", "--json"], "--json needs --yes or --dry-run"),
    ],
)
def test_bad_reset_is_one_line_exit_2_and_changes_nothing(
    args: list[str], message: str, sqlite_url: str
) -> None:
    cli = Cli(env={"FULCRUM_SYNC_DATABASE_URL": sqlite_url, "FULCRUM_SYNC_LOG_FORMAT": "rich"})
    assert cli("discover").exit_code == 0
    before = count(sqlite_url, t.runs)
    result = cli("state", "reset", *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert count(sqlite_url, t.runs) == before
