"""Output a person can read at 80 columns: the sync summary, ``patterns show``, ``runs show``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cli_invoke import Cli
from state_db import copy_of, new_state

from fulcrum_sync.render.numbers import format_field, format_number, format_pct, format_value

PERIOD = "2025-09-30"
ACME_DAY = ["acme::active_users", "acme::new_revenue", "acme::orders"]
SYNC = ["sync", "-g", "day", "-p", PERIOD, "-t", "acme"]


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A SQLite database after a sync of acme's day contexts (patterns on) and its summary."""
    with new_state(tmp_path_factory, "output") as (path, cli):
        return path, cli.ok(*SYNC, env={"COLUMNS": "80"}).stdout


@pytest.fixture
def cli(synced: tuple[Path, str], tmp_path: Path) -> Cli:
    """The CLI on a copy of the module's database."""
    return Cli.demo(copy_of(synced[0], tmp_path))


def test_sync_summary_fits_80_columns_with_one_line_per_context(
    synced: tuple[Path, str],
) -> None:
    lines = synced[1].splitlines()
    assert all(len(line) <= 80 for line in lines), "\n".join(lines)
    for context in ACME_DAY:
        (row,) = [line for line in lines if line.startswith(context)]
        assert row.split()[1] == "FULL" and row.rstrip().endswith("succeeded")
    assert "hidden at 80 columns: window" in " ".join(synced[1].split())
    assert lines[-1].startswith("Run ") and "succeeded (3 succeeded)" in lines[-1]


def test_skip_reason_is_said_once(cli: Cli) -> None:
    again = cli(*SYNC, "--no-patterns", env={"COLUMNS": "80"})
    assert again.exit_code == 0, again.output
    text = again.stdout
    assert text.count("already done") == 1
    assert "(a) already done (use --force to run again)" in text
    rows = [line for line in text.splitlines() if line.startswith("acme::")]
    assert len(rows) == 3 and all(line.rstrip().endswith("skipped (a)") for line in rows)


def test_wide_terminal_shows_every_column(cli: Cli) -> None:
    result = cli(*SYNC, "--force", "--no-patterns", env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    header = next(line for line in result.stdout.splitlines() if line.startswith("context"))
    assert header.split() == [
        "context",
        *("type", "window", "stored", "skipped", "dims", "patterns", "time", "status"),
    ]
    assert "hidden at" not in result.stdout


def test_patterns_show_formats_numbers_and_never_cuts_off(cli: Cli) -> None:
    result = cli("patterns", "show", "acme::new_revenue", "-g", "day", env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "..." not in text
    assert not re.search(r"\d\.\d{5,}", text), "raw floats"
    assert all(len(line) <= 80 for line in text.splitlines())
    stored = json.loads(cli("patterns", "show", "acme::new_revenue", "-g", "day", "--json").stdout)
    status = next(r for r in stored if r["pattern"] == "performance_status")["result"]
    assert f"change pct: {format_pct(status['change_pct'], signed=True)}" in text
    assert f"value: {format_number(status['value'])}" in text
    region = next(r for r in stored if r["dimension"] == "region")["result"]
    for piece in region["slices"]:  # every slice, never "... and 3 more"
        assert re.search(rf"^\W*{piece['slice']} · value ", text, re.M), piece["slice"]
    forecast = next(r for r in stored if r["pattern"] == "forecasting")["result"]
    last_point = forecast["points"][-1]
    assert last_point["date"] in text  # the whole table of points


def test_runs_show_lists_every_key_of_the_run(cli: Cli) -> None:
    runs = json.loads(cli("runs", "--limit", "5", "--command", "sync", "--json").stdout)
    run_id = runs[0]["run_id"]
    shown = cli("runs", "show", run_id[:8], "--json")
    assert shown.exit_code == 0, shown.output
    detail = json.loads(shown.stdout)
    assert detail["run"]["run_id"] == run_id and detail["run"]["command"] == "sync"
    sync_keys = sorted(k["run_key"] for k in detail["keys"] if k["kind"] == "sync")
    assert sync_keys == [f"sync:day:{PERIOD}:{c}" for c in ACME_DAY]
    assert all(k["status"] == "succeeded" and k["duration_seconds"] >= 0 for k in detail["keys"])
    assert any(k["kind"] == "pattern" for k in detail["keys"])

    table = cli("runs", "show", run_id[:8], env={"COLUMNS": "80"})
    assert table.exit_code == 0, table.output
    assert f"Run {run_id}" in table.stdout and "succeeded" in table.stdout
    assert "acme::new_revenue" in table.stdout and "· forecasting" in table.stdout
    assert all(len(line) <= 80 for line in table.stdout.splitlines())


@pytest.mark.parametrize(
    ("prefix", "message"),
    [("zz", "invalid run id 'zz'"), ("ffffffff", "no run with an id starting 'ffffffff'")],
)
def test_runs_show_refuses_unknown_ids(cli: Cli, prefix: str, message: str) -> None:
    result = cli("runs", "show", prefix)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("key", "value", "text"),
    [
        ("total_change_pct", -0.059517825325270696, "-6.0%"),
        ("share", 1.3046138893271576e-06, "<0.1%"),
        ("share", 0.4122238979405148, "41.2%"),
        ("share_change", 0.005887452593412057, "+0.6 pp"),
        ("latest_growth", 0.0711, "+7.1%"),
        ("value", 21738.004, "21,738"),
        ("score", 3.9806524424631693, "3.98"),
        ("smoothing_level", 1.49e-08, "1.49e-08"),
        ("periods", 12345, "12,345"),
        ("gap", None, "—"),
        ("is_record_low", True, "yes"),
    ],
)
def test_fields_are_formatted_by_what_they_hold(key: str, value: object, text: str) -> None:
    assert format_field(key, value) == text


def test_stored_values_keep_their_decimals() -> None:
    assert format_value(22391.92) == "22,391.92"
    assert format_value(0.0345) == "0.0345"
    assert format_value(12.0) == "12"
