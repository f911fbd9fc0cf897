"""``fulcrum-sync catalog load``: valid files load; bad ones exit 2 and write nothing."""

from __future__ import annotations

import json
from pathlib import Path

from cli_invoke import Cli, Ran
from state_db import stored_catalog, table_names

from fulcrum_sync.catalog import parse_catalog

UNREACHABLE = "postgresql+psycopg://u:s3cret@127.0.0.1:1/x"

CATALOG = """\
tenants:
  - tenant_id: 1
    identifier: acme
    metrics:
      - metric_id: new_revenue
        measure: orders.total_amount
        time_dimension: orders.created_at
        dimensions:
          - {dimension_id: region, member: orders.region}
          - {dimension_id: channel, member: orders.channel}
        grains: [day, week]
        patterns: [performance_status]
        targets: {week: {"2025-W28": 100, "2025-W29": 110}}
      - metric_id: orders
        measure: orders.count
        time_dimension: orders.created_at
        grains: [day]
"""


def _write(tmp_path: Path, text: str, name: str = "catalog.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _one_line_error(result: Ran) -> str:
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    return lines[0]


def test_load_a_catalog(cli: Cli, db_url: str, tmp_path: Path) -> None:
    path = _write(tmp_path, CATALOG)
    result = cli("catalog", "load", str(path))
    assert result.exit_code == 0, result.output
    assert f"Loaded {path}: 1 tenants, 2 metrics, 2 target periods." in result.stdout
    assert "Metrics added: acme::new_revenue, acme::orders" in result.stdout
    assert "fulcrum-sync discover" in result.stdout
    assert stored_catalog(db_url) == parse_catalog(CATALOG)

    # Loading it again changes nothing; discover then uses it instead of the demo catalog.
    again = cli("catalog", "load", str(path), "--json")
    data = json.loads(again.stdout)
    assert (data["tenants"], data["metrics"], data["targets"]) == (1, 2, 2)
    assert data["metrics_added"] == data["metrics_changed"] == data["metrics_removed"] == []
    discovered = json.loads(cli("discover", "--json").stdout)
    assert discovered["demo_catalog_loaded"] is False
    assert (discovered["active_contexts"], discovered["active_pattern_contexts"]) == (3, 2)


def test_changed_and_removed_metrics_are_reported(cli: Cli, db_url: str, tmp_path: Path) -> None:
    assert cli("catalog", "load", str(_write(tmp_path, CATALOG))).exit_code == 0
    changed = CATALOG.replace("orders.channel", "orders.sales_channel").split(
        "      - metric_id: orders"
    )[0]
    result = cli("catalog", "load", str(_write(tmp_path, changed, "v2.yaml")))
    assert result.exit_code == 0, result.output
    assert "Metrics changed: acme::new_revenue" in result.stdout
    assert "Metrics removed: acme::orders" in result.stdout


def test_yaml_syntax_error_exits_2_naming_file_and_line(
    cli: Cli, db_url: str, tmp_path: Path
) -> None:
    broken = CATALOG.replace("        grains: [day]\n", "        grains: [day\n")
    path = _write(tmp_path, broken)
    line = _one_line_error(cli("catalog", "load", str(path)))
    assert f"invalid YAML in {path}:" in line
    # The parser fails at the end of the file; the message also names the opening line.
    last = len(broken.splitlines())
    assert f"{path}:{last + 1}:" in line
    assert f"while parsing a flow sequence on line {last}" in line
    assert table_names(db_url) == set()


def test_yaml_syntax_error_line_is_the_bad_line(cli: Cli, tmp_path: Path) -> None:
    lines = CATALOG.splitlines()
    lines[4] = "        measure: orders.total_amount: oops"
    path = _write(tmp_path, "\n".join(lines) + "\n")
    line = _one_line_error(cli("catalog", "load", str(path)))
    assert f"invalid YAML in {path}:5:" in line


def test_missing_field_exits_2_naming_its_path(cli: Cli, db_url: str, tmp_path: Path) -> None:
    path = _write(tmp_path, CATALOG.replace("        measure: orders.count\n", ""))
    line = _one_line_error(cli("catalog", "load", str(path)))
    assert "tenants[0](acme).metrics[1](orders).measure" in line
    assert "Field required" in line
    assert table_names(db_url) == set()


def test_bad_catalog_leaves_the_stored_one_alone(cli: Cli, db_url: str, tmp_path: Path) -> None:
    assert cli("catalog", "load", str(_write(tmp_path, CATALOG))).exit_code == 0
    bad = CATALOG.replace("[day, week]", "[day, fortnight]")
    line = _one_line_error(cli("catalog", "load", str(_write(tmp_path, bad, "b.yaml"))))
    assert "tenants[0](acme).metrics[0](new_revenue).grains" in line and "'fortnight'" in line
    bad_target = CATALOG.replace('"2025-W29"', '"2025-07"')
    line = _one_line_error(cli("catalog", "load", str(_write(tmp_path, bad_target, "c.yaml"))))
    assert "targets" in line and "'2025-07'" in line
    assert stored_catalog(db_url) == parse_catalog(CATALOG)


def test_missing_file_exits_2(cli: Cli, db_url: str, tmp_path: Path) -> None:
    line = _one_line_error(cli("catalog", "load", str(tmp_path / "nope.yaml")))
    assert "cannot read catalog" in line and "nope.yaml" in line
    assert table_names(db_url) == set()


def test_unreachable_database_exits_3(cli: Cli, tmp_path: Path) -> None:
    env = {"FULCRUM_SYNC_DATABASE_URL": UNREACHABLE}
    env["FULCRUM_SYNC_DATABASE_RETRY_SECONDS"] = "0"  # no wait for a server that never comes
    result = cli("catalog", "load", str(_write(tmp_path, CATALOG)), env=env)
    assert result.exit_code == 3
    assert "PostgreSQL at 127.0.0.1:1/x" in result.stderr
    assert "s3cret" not in result.output


def test_catalog_load_help() -> None:
    result = Cli()("catalog", "load", "--help")
    assert result.exit_code == 0
    assert "Example: fulcrum-sync catalog load" in result.stdout
