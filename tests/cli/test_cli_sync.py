"""`fulcrum-sync sync` on the demo source, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from cli_invoke import Cli
from sqlalchemy import func, select
from typer.testing import CliRunner

from fulcrum_sync.catalog import active_contexts, demo_catalog
from fulcrum_sync.cli import app
from fulcrum_sync.domain import Grain
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import open_engine

runner = CliRunner()
DAY_CONTEXTS = len(active_contexts(demo_catalog(), Grain.DAY))


def sync(env: dict[str, str], *args: str) -> tuple[int, dict[str, Any]]:
    result = Cli(env=env)("sync", "--grain", "day", "--json", "--no-patterns", *args)
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


def series_types(payload: dict[str, Any]) -> dict[tuple[str, str | None], str]:
    return {
        (c["context"], s["dimension"]): s["sync_type"]
        for c in payload["contexts"]
        for s in c["series"]
    }


def count_rows(url: str) -> tuple[int, int]:
    engine = open_engine(url)
    with engine.connect() as conn:
        base = conn.execute(select(func.count()).select_from(t.metric_time_series)).scalar_one()
        dims = conn.execute(
            select(func.count()).select_from(t.metric_dimensional_time_series)
        ).scalar_one()
    engine.dispose()
    return base, dims


def test_first_sync_is_full_then_incremental_then_skipped(cli_env: dict[str, str], db_url: str):
    code, first = sync(cli_env, "--period", "2025-09-30")
    assert code == 0
    assert len(first["contexts"]) == DAY_CONTEXTS
    assert all(c["status"] == "succeeded" for c in first["contexts"])
    assert set(series_types(first).values()) == {"FULL"}
    # FULL window is clamped to the history start.
    assert {c["window"] for c in first["contexts"]} == {"2025-07-01..2025-09-30"}
    rows_after_first = count_rows(db_url)
    assert rows_after_first[0] == DAY_CONTEXTS * 92

    code, second = sync(cli_env, "--period", "2025-10-01")
    assert code == 0
    types = series_types(second)
    assert types and set(types.values()) == {"INCREMENTAL"}
    assert {c["window"] for c in second["contexts"]} == {"2025-07-04..2025-10-01"}
    # Only the new day is inserted; the re-fetched lookback is unchanged.
    for c in second["contexts"]:
        base = next(s for s in c["series"] if s["dimension"] is None)
        assert base["inserted"] == 1 and base["updated"] == 0 and base["unchanged"] == 89
    rows_after_second = count_rows(db_url)

    code, third = sync(cli_env, "--period", "2025-10-01")
    assert code == 0
    assert {c["status"] for c in third["contexts"]} == {"skipped"}
    assert all("already done" in c["skip_reason"] for c in third["contexts"])

    code, forced = sync(cli_env, "--period", "2025-10-01", "--force")
    assert code == 0
    assert {c["status"] for c in forced["contexts"]} == {"succeeded"}
    assert count_rows(db_url) == rows_after_second


def test_summary_table_is_printed(cli_env: dict[str, str]):
    env = {**cli_env, "FULCRUM_SYNC_LOG_FORMAT": "rich"}
    result = runner.invoke(
        app, ["sync", "--grain", "daily", "--period", "2025-07-10", "--no-patterns"], env=env
    )
    assert result.exit_code == 0, result.output
    assert "acme::new_revenue" in result.stdout
    assert "FULL" in result.stdout
    assert f"{DAY_CONTEXTS} succeeded" in result.stdout


def test_changed_definition_gets_full_others_incremental(cli_env: dict[str, str], tmp_path: Path):
    assert sync(cli_env, "--period", "2025-08-31")[0] == 0
    data = yaml.safe_load(
        (Path(__file__).parents[2] / "fulcrum_sync/data/demo_catalog.yaml").read_text()
    )
    metric = data["tenants"][0]["metrics"][0]
    assert metric["metric_id"] == "new_revenue"
    metric["measure"] = "orders.net_amount"
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data))
    loaded = runner.invoke(app, ["catalog", "load", str(path)], env=cli_env)
    assert loaded.exit_code == 0, loaded.output
    assert "changed: acme::new_revenue" in loaded.stdout

    _, payload = sync(cli_env, "--period", "2025-09-01")
    types = series_types(payload)
    changed = {k: v for k, v in types.items() if k[0] == "acme::new_revenue"}
    others = {k: v for k, v in types.items() if k[0] != "acme::new_revenue"}
    assert changed and set(changed.values()) == {"FULL"}
    assert others and set(others.values()) == {"INCREMENTAL"}


def test_force_full_and_filters(cli_env: dict[str, str]):
    assert sync(cli_env, "--period", "2025-08-31")[0] == 0
    _, payload = sync(
        cli_env, "--period", "2025-09-01", "--tenant", "acme", "--metric", "orders", "--force-full"
    )
    assert [c["context"] for c in payload["contexts"]] == ["acme::orders"]
    assert set(series_types(payload).values()) == {"FULL"}


def test_dry_run_writes_nothing(cli_env: dict[str, str], db_url: str):
    env = {**cli_env, "FULCRUM_SYNC_LOG_FORMAT": "rich"}
    result = runner.invoke(
        app, ["sync", "--grain", "day", "--period", "2025-07-13", "--dry-run"], env=env
    )
    assert result.exit_code == 0, result.output
    assert "nothing was written" in result.stdout
    assert "2025-07-13" in result.stdout  # the window ends on the day asked for
    engine = open_engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.runs)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(t.contexts)).scalar_one() == 0
    engine.dispose()


def test_week_period_resolves_to_monday(cli_env: dict[str, str]):
    result = runner.invoke(
        app,
        ["sync", "--grain", "week", "--period", "2025-W28", "--no-patterns", "--json"],
        env=cli_env,
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["period"] == "2025-07-07"
    assert payload["period_label"] == "2025-W28 (2025-07-07)"


def test_bad_input_exits_2_and_writes_nothing(cli_env: dict[str, str], db_url: str):
    cases = [
        (["--period", "2025-13-01"], "2025-13-01"),
        (["--period", "2025-06-30"], "history start"),
    ]
    for extra, needle in cases:
        result = runner.invoke(app, ["sync", "--grain", "day", *extra], env=cli_env)
        assert result.exit_code == 2, result.output
        assert needle in result.output
        assert len(result.output.strip().splitlines()) == 1
    hourly = runner.invoke(app, ["sync", "--grain", "hourly"], env=cli_env)
    assert hourly.exit_code == 2
    assert "'hourly'" in hourly.output and "day, week, month" in hourly.output
    engine = open_engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.runs)).scalar_one() == 0
    engine.dispose()


def test_unknown_tenant_lists_known(cli_env: dict[str, str], db_url: str):
    result = runner.invoke(app, ["sync", "--grain", "day", "--tenant", "nobody"], env=cli_env)
    assert result.exit_code == 2, result.output
    line = result.output.strip()
    assert len(line.splitlines()) == 1
    assert "'nobody'" in line and "acme" in line and "initech" in line
    engine = open_engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.runs)).scalar_one() == 0
        assert (
            conn.execute(select(func.count()).select_from(t.metric_time_series)).scalar_one() == 0
        )
    engine.dispose()


def test_status_and_runs_after_sync(cli_env: dict[str, str]):
    assert sync(cli_env, "--period", "2025-08-31")[0] == 0
    runs = runner.invoke(app, ["runs", "--json"], env=cli_env)
    assert runs.exit_code == 0
    rows = json.loads(runs.stdout)
    assert rows[0]["command"] == "sync" and rows[0]["outcome"] == "succeeded"
    status = runner.invoke(app, ["status", "--grain", "day", "--json"], env=cli_env)
    report = json.loads(status.stdout)
    fresh = report["freshness"][0]
    assert fresh["contexts"] == DAY_CONTEXTS
    # 2025-08-31 is long past: every context is behind the last complete day.
    assert len(fresh["behind"]) == DAY_CONTEXTS
    assert status.exit_code == 1
    assert report["failing_series"] == []
