"""``status --format openmetrics``: freshness gauges a textfile collector can read."""

from __future__ import annotations

from prometheus_client.openmetrics.parser import text_string_to_metric_families
from typer.testing import CliRunner

from fulcrum_sync.cli import app
from fulcrum_sync.render.openmetrics import STATUS_GAUGES

runner = CliRunner()


def gauges(text: str) -> dict[tuple[str, str], float]:
    return {
        (s.name, s.labels["grain"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_openmetrics_status_says_per_grain_how_fresh_it_is(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "FULCRUM_SYNC_TODAY": "2025-10-02"}
    assert runner.invoke(app, ["sync", "-g", "day", "-t", "acme"], env=env).exit_code == 0
    result = runner.invoke(app, ["status", "--format", "openmetrics"], env=env)
    assert result.exit_code == 0  # healing: the never-synced contexts are the schedule's to sync
    assert result.stdout.endswith("# EOF\n")
    values = gauges(result.stdout)  # the strict OpenMetrics parser accepts it
    assert {name for name, _ in values} <= set(STATUS_GAUGES)
    day = {name: v for (name, grain), v in values.items() if grain == "day"}
    assert day["fulcrum_sync_status_contexts"] > day["fulcrum_sync_status_contexts_behind"] > 0
    assert day["fulcrum_sync_status_expected_period_timestamp_seconds"] == 1759276800  # 10-01
    assert day["fulcrum_sync_status_synced_period_timestamp_seconds"] == 1759276800
    assert day["fulcrum_sync_status_last_success_timestamp_seconds"] > 0
    assert day["fulcrum_sync_status_healthy"] == 0

    only_day = runner.invoke(app, ["status", "--format", "openmetrics", "--grain", "day"], env=env)
    assert {grain for _, grain in gauges(only_day.stdout)} == {"day"}


def test_a_bad_format_is_refused(cli_env: dict[str, str]) -> None:
    result = runner.invoke(app, ["status", "--format", "xml"], env=cli_env)
    assert result.exit_code == 2
    assert "invalid --format 'xml'" in result.output
