"""``catalog validate`` writes nothing; ``catalog show`` round-trips through ``catalog load``."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from cli_invoke import Cli
from state_db import stored_catalog

from fulcrum_sync.catalog import parse_catalog


def test_show_then_validate_then_load_is_a_round_trip_with_no_change(
    cli: Cli, db_url: str, tmp_path: Path
) -> None:
    assert cli("discover").exit_code == 0  # loads the demo catalog
    before = stored_catalog(db_url)
    shown = cli("catalog", "show")
    assert shown.exit_code == 0, shown.output
    assert parse_catalog(shown.stdout) == before
    path = tmp_path / "c.yaml"
    path.write_text(shown.stdout)

    valid = cli("catalog", "validate", str(path))
    assert valid.exit_code == 0, valid.output
    assert f"✓ {path} is valid: 4 tenants, 17 metrics, 31 active contexts." in valid.stdout

    loaded = cli("catalog", "load", str(path), "--json")
    assert loaded.exit_code == 0, loaded.output
    changes = json.loads(loaded.stdout)
    assert changes["metrics_added"] == changes["metrics_changed"] == []
    assert changes["metrics_removed"] == []
    assert stored_catalog(db_url) == before
    again = cli("catalog", "load", str(path))
    assert "No metric added, changed or removed." in again.stdout


def test_show_leaves_defaults_out_and_keeps_targets(cli: Cli) -> None:
    assert cli("discover").exit_code == 0
    data = yaml.safe_load(cli("catalog", "show").stdout)
    acme = next(t for t in data["tenants"] if t["identifier"] == "acme")
    assert "active" not in acme and "cache_enabled" not in acme  # defaults
    legacy = next(m for m in acme["metrics"] if m["metric_id"] == "legacy_signups")
    assert legacy["active"] is False
    revenue = next(m for m in acme["metrics"] if m["metric_id"] == "new_revenue")
    assert revenue["targets"]["day"] == 21000 and revenue["targets"]["month"]["2025-07"] == 600000
    globex = next(t for t in data["tenants"] if t["identifier"] == "globex")
    assert globex["cache_enabled"] is False


def test_validate_reports_the_problem_and_opens_no_database(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "tenants:\n  - tenant_id: 1\n    identifier: acme\n    metrics:\n"
        "      - {metric_id: orders, time_dimension: orders.created_at}\n"
    )
    result = Cli()("catalog", "validate", str(bad))
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    first = result.stderr.strip().splitlines()[0]
    assert first.startswith("Error: ") and "tenants[0](acme).metrics[0](orders).measure" in first
    assert "Field required" in result.stderr
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(
        "tenants:\n  - tenant_id: 1\n    identifier: acme\n    metrics:\n"
        "      - {metric_id: o, measure: m.c, time_dimension: m.t, patterns: [astrology]}\n"
    )
    result = Cli()("catalog", "validate", str(unknown))
    assert result.exit_code == 2 and "astrology" in result.stderr
    assert not Path("fulcrum_sync.db").exists()  # conftest runs each test in its own tmp_path
