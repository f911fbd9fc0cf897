"""Finding things: `runs` filters, `runs show` as labelled lines with real ids, `patterns run`
and `patterns show --pattern --dimension`, one wording for "already done"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_invoke import Cli
from state_db import copy_of, new_state

from fulcrum_sync.domain import RUN_OUTCOMES

PERIOD = "2025-09-30"


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """acme: day synced on 2025-08-06, caught up on 2025-08-10; a week sync; a cache load."""
    with new_state(tmp_path_factory, "find") as (path, cli):
        cli.ok("sync", "-g", "day", "-t", "acme", today="2025-08-06")
        cli = cli.but(today="2025-08-10")
        cli.ok("sync", "-g", "day", "--catch-up", "-t", "acme")
        cli.ok("sync", "-g", "week", "-t", "acme", "--no-patterns")
        cli.ok("cache-load", "-g", "day", "-t", "acme")
    return path


@pytest.fixture
def cli(state: Path, tmp_path: Path) -> Cli:
    """The CLI on a copy of the module's database."""
    return Cli.demo(copy_of(state, tmp_path))


def runs_json(cli: Cli, *args: str) -> list[dict[str, object]]:
    result = cli("runs", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_runs_filters_combine(cli: Cli) -> None:
    assert len(runs_json(cli)) == 4
    day_syncs = runs_json(cli, "--command", "sync", "--grain", "day")
    assert [r["arguments"]["grain"] for r in day_syncs] == ["day", "day"]  # type: ignore[index]
    assert [r["command"] for r in runs_json(cli, "--grain", "week")] == ["sync"]
    assert len(runs_json(cli, "--outcome", "succeeded")) == 4
    assert runs_json(cli, "--outcome", "failed") == []
    assert runs_json(cli, "--since", "2099-01-01") == []
    assert len(runs_json(cli, "--since", "2h")) == 4  # started minutes ago
    assert len(runs_json(cli, "--since", "2020-01-01T00:00", "-c", "cache-load")) == 1


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ["--outcome", "bogus"],
            f"invalid --outcome 'bogus': expected one of {', '.join(RUN_OUTCOMES)}",
        ),
        (["--since", "yesterday"], "invalid --since 'yesterday': expected a date"),
        (["--grain", "fortnight"], "fortnight"),
    ],
)
def test_a_bad_runs_filter_is_one_line_and_exit_2(cli: Cli, args: list[str], said: str) -> None:
    result = cli("runs", *args)
    assert result.exit_code == 2, result.output
    assert said in result.output and "Traceback" not in result.output


def test_runs_show_prints_labelled_lines_with_real_ids(cli: Cli) -> None:
    (catch_up,) = [
        r
        for r in runs_json(cli, "-c", "sync", "-g", "day")
        if r["arguments"].get("catch_up")  # type: ignore[union-attr]
    ]
    result = cli("runs", "show", str(catch_up["run_id"])[:8], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"Run {catch_up['run_id']}")
    text = result.stdout
    assert "None" not in text and "active users" not in text
    labelled = {
        line.split()[0]: line.strip().split(maxsplit=1)[1:]
        for line in lines
        if line.startswith("  ")
    }
    assert labelled["host"] and labelled["started"] and labelled["contexts"] == ["3"]
    assert any(
        line.split()[:1] == ["acme::active_users"] and "2025-08-06..2025-08-09 (4)" in line
        for line in lines
    ), text
    assert "retry_budget" not in text  # an empty field (None) is left out, not printed


def test_patterns_run_is_the_documented_spelling_and_the_old_one_still_works(cli: Cli) -> None:
    env = {"FULCRUM_SYNC_TODAY": "2025-08-10", "COLUMNS": "100"}
    first = cli("patterns", "run", "-g", "day", "-t", "acme", "-m", "orders", "--force", env=env)
    assert first.exit_code == 0, first.output
    again = cli("patterns", "-g", "day", "-t", "acme", "-m", "orders", env=env)
    assert again.exit_code == 0, again.output
    assert "skipped (already done)" in again.stdout and " done)" in again.stdout
    rows = [line for line in again.stdout.splitlines() if line.startswith("acme::orders")]
    assert rows and all(" skipped " in line and "already done" in line for line in rows)
    assert " 3 done" not in again.stdout
    help_text = cli("patterns", "--help").stdout
    assert "run " in help_text and "without run" in " ".join(help_text.split())


def test_patterns_show_filters_by_pattern_and_dimension(cli: Cli) -> None:
    args = ("patterns", "show", "acme::new_revenue", "-g", "day", "--json")
    env = {"FULCRUM_SYNC_TODAY": "2025-08-10"}
    every = json.loads(cli(*args, env=env).stdout)
    assert {r["pattern"] for r in every} >= {"dimension_analysis", "forecasting"}
    only = json.loads(cli(*args, "--pattern", "dimension_analysis", env=env).stdout)
    assert only and {r["pattern"] for r in only} == {"dimension_analysis"}
    region = json.loads(
        cli(*args, "--pattern", "dimension_analysis", "-d", "region", env=env).stdout
    )
    assert [r["dimension"] for r in region] == ["region"]
    table = cli(*args[:-1], "--pattern", "forecasting", env={"COLUMNS": "80", **env})
    assert table.exit_code == 0 and "forecasting" in table.stdout
    assert "dimension_analysis" not in table.stdout  # piped: printed, filtered, no pager
    bad = cli(*args, "--pattern", "nosuch", env=env)
    assert bad.exit_code == 2 and "unknown pattern 'nosuch'" in bad.output
