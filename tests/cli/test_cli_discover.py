"""``fulcrum-sync discover``: the Must-show lines of issue 4, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from cli_invoke import Cli
from sqlalchemy import func, insert, select
from state_db import table_names, unmigrated

from fulcrum_sync.catalog import active_contexts, demo_catalog
from fulcrum_sync.store import tables as t

DEMO_YAML = resources.files("fulcrum_sync").joinpath("data", "demo_catalog.yaml")
UNREACHABLE = "postgresql+psycopg://u:s3cret@127.0.0.1:1/x"
SUMMARY = re.compile(
    r"(\d+) added, (\d+) deactivated, (\d+) reactivated, (\d+) unchanged "
    r"\((\d+) active contexts, (\d+) pattern contexts, ([a-z ]+)\)"
)


def _summary(output: str) -> tuple[int, int, int, int]:
    match = SUMMARY.search(output)
    assert match, output
    added, deactivated, reactivated, unchanged = (int(match.group(i)) for i in range(1, 5))
    return added, deactivated, reactivated, unchanged


def _demo_counts(grain: str | None = None) -> tuple[int, int]:
    """Metric contexts and pattern contexts the demo catalog should yield."""
    contexts = [c for c in active_contexts(demo_catalog()) if grain in (None, c.grain.value)]
    return len(contexts), sum(len(c.metric.patterns) for c in contexts)


def _query(db_url: str, statement: Any) -> list[Any]:
    with unmigrated(db_url) as engine, engine.begin() as conn:
        result = conn.execute(statement)
        return list(result) if result.returns_rows else []


def test_first_discover_loads_the_demo_catalog_and_second_reports_no_change(
    cli: Cli,
) -> None:
    result = cli("discover")
    assert result.exit_code == 0, result.output
    catalog = demo_catalog()
    taking_part = [x.identifier for x in catalog.tenants if x.active and x.cache_enabled]
    left_out = [x.identifier for x in catalog.tenants if not (x.active and x.cache_enabled)]
    first_line = result.stdout.splitlines()[0]
    assert first_line.startswith("Catalog was empty: loaded the demo catalog")
    assert f"tenants taking part: {', '.join(sorted(taking_part))}" in first_line
    assert f"not taking part: {', '.join(sorted(left_out))}" in first_line
    contexts, patterns = _demo_counts()
    assert _summary(result.stdout) == (contexts + patterns, 0, 0, 0)
    assert f"({contexts} active contexts, {patterns} pattern contexts, all grains)" in result.stdout

    # The table has one row per metric context and grain; pattern contexts are counted.
    rows = [line for line in result.stdout.splitlines() if " added " in line and "::" in line]
    assert len(rows) == contexts
    revenue_day = next(r for r in rows if "acme::new_revenue " in r and " day " in r)
    new_revenue = next(m for m in catalog.tenants[0].metrics if m.metric_id == "new_revenue")
    assert f"{len(new_revenue.patterns)} added" in revenue_day
    assert "::performance_status" not in result.stdout
    assert f"{patterns} pattern context changes" in result.stdout
    assert "--verbose" in result.stdout

    again = cli("discover")
    assert again.exit_code == 0, again.output
    assert "0 added, 0 deactivated" in again.stdout
    assert "demo catalog" not in again.stdout
    assert "Context changes" not in again.stdout
    assert _summary(again.stdout) == (0, 0, 0, contexts + patterns)


def test_discover_json_carries_the_same_counts(cli: Cli) -> None:
    contexts, patterns = _demo_counts()
    first = cli("discover", "--json")
    assert first.exit_code == 0, first.output
    data = json.loads(first.stdout)
    assert data["demo_catalog_loaded"] is True
    assert (data["active_contexts"], data["active_pattern_contexts"]) == (contexts, patterns)
    assert len(data["changes"]["added"]) == contexts + patterns
    assert "acme::new_revenue::performance_status@day" in data["changes"]["added"]
    assert data["changes"]["deactivated"] == [] and data["changes"]["unchanged"] == 0
    assert "acme" in data["tenants"] and "globex" in data["tenants_excluded"]

    second = json.loads(cli("discover", "--json").stdout)
    assert second["demo_catalog_loaded"] is False
    assert second["changes"]["added"] == second["changes"]["deactivated"] == []
    assert second["changes"]["unchanged"] == contexts + patterns
    human = cli("discover")
    assert _summary(human.stdout) == (0, 0, 0, second["changes"]["unchanged"])


def test_verbose_lists_pattern_contexts(cli: Cli) -> None:
    result = cli("--verbose", "discover")
    assert result.exit_code == 0, result.output
    assert "Pattern context changes" in result.stdout
    assert "acme::new_revenue::performance_status" in result.stdout
    _, patterns = _demo_counts()
    listed = [line for line in result.stdout.splitlines() if re.search(r"\w::\w+::\w", line)]
    assert len(listed) == patterns


def test_discover_one_grain(cli: Cli) -> None:
    result = cli("discover", "--grain", "weekly")
    assert result.exit_code == 0, result.output
    contexts, patterns = _demo_counts("week")
    assert _summary(result.stdout) == (contexts + patterns, 0, 0, 0)
    assert result.stdout.rstrip().endswith("pattern contexts, week)")
    # The other grains are discovered later, without touching the weekly ones.
    result = cli("discover")
    all_contexts, all_patterns = _demo_counts()
    assert _summary(result.stdout) == (
        all_contexts + all_patterns - contexts - patterns,
        0,
        0,
        contexts + patterns,
    )


def _catalog_without(path: Path, tenant: str, metric: str) -> Path:
    data = yaml.safe_load(DEMO_YAML.read_text())
    owner = next(x for x in data["tenants"] if x["identifier"] == tenant)
    owner["metrics"] = [m for m in owner["metrics"] if m["metric_id"] != metric]
    path.write_text(yaml.safe_dump(data))
    return path


def test_removed_metric_is_deactivated_and_keeps_its_rows(
    cli: Cli, db_url: str, tmp_path: Path
) -> None:
    assert cli("discover").exit_code == 0
    rows = [
        {
            "tenant_id": 1,
            "metric_id": "orders",
            "grain": "day",
            "date": date(2025, 7, d),
            "value": 1.0 * d,
        }
        for d in range(1, 11)
    ]
    _query(db_url, insert(t.metric_time_series).values(rows))

    path = _catalog_without(tmp_path / "catalog.yaml", "acme", "orders")
    loaded = cli("catalog", "load", str(path))
    assert loaded.exit_code == 0, loaded.output
    assert "Metrics removed: acme::orders" in loaded.stdout

    result = cli("discover")
    assert result.exit_code == 0, result.output
    orders = next(m for m in demo_catalog().tenants[0].metrics if m.metric_id == "orders")
    gone = len(orders.grains) * (1 + len(orders.patterns))
    contexts, patterns = _demo_counts()
    assert _summary(result.stdout) == (0, gone, 0, contexts + patterns - gone)
    table = [line for line in result.stdout.splitlines() if "acme::orders " in line]
    assert len(table) == len(orders.grains)
    assert all("deactivated" in line for line in table)

    data = json.loads(cli("discover", "--json").stdout)
    assert data["changes"]["deactivated"] == []  # reported once

    stored = _query(
        db_url,
        select(func.count())
        .select_from(t.metric_time_series)
        .where(t.metric_time_series.c.metric_id == "orders"),
    )
    assert stored[0][0] == len(rows)
    contexts_rows = _query(
        db_url,
        select(t.contexts).where(t.contexts.c.metric_id == "orders", t.contexts.c.tenant_id == 1),
    )
    assert len(contexts_rows) == gone  # deactivated, never deleted
    assert all(not r.active and r.deactivated_at is not None for r in contexts_rows)

    # Put it back: its contexts are reactivated, not added again.
    full = tmp_path / "full.yaml"
    full.write_text(DEMO_YAML.read_text())
    assert cli("catalog", "load", str(full)).exit_code == 0
    result = cli("discover")
    assert _summary(result.stdout)[:3] == (0, 0, gone)
    table = [line for line in result.stdout.splitlines() if "acme::orders " in line]
    assert len(table) == len(orders.grains)
    assert all("reactivated" in line for line in table)


def test_bad_grain_exits_2_and_writes_nothing(cli: Cli, db_url: str) -> None:
    result = cli("discover", "--grain", "fortnight")
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "'fortnight'" in lines[0] and "day, week, month" in lines[0]
    assert table_names(db_url) == set()


def test_unreachable_database_exits_3_with_a_masked_url(cli: Cli) -> None:
    env = {"FULCRUM_SYNC_DATABASE_URL": UNREACHABLE}
    env["FULCRUM_SYNC_DATABASE_RETRY_SECONDS"] = "0"  # no wait for a server that never comes
    result = cli("discover", env=env)
    assert result.exit_code == 3
    assert "s3cret" not in result.output
    assert "PostgreSQL at 127.0.0.1:1/x" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_invalid_setting_exits_2(cli: Cli, db_url: str) -> None:
    result = cli("discover", env={"FULCRUM_SYNC_SOURCE": "oracle"})
    assert result.exit_code == 2
    # The source registry refuses it when the settings are read (main 424f653).
    assert result.stderr == "Error: unknown source 'oracle': expected one of demo, cube\n"
    assert table_names(db_url) == set()


def test_discover_help_ends_with_an_example() -> None:
    result = Cli()("discover", "--help")
    assert result.exit_code == 0
    assert "Example: fulcrum-sync discover" in result.stdout
