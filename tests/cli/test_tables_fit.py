"""Every table fits the terminal (SPEC §7): columns are dropped by priority and named under the
table, identifiers are never broken across lines, ``--json`` keeps everything."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest
from cli_invoke import Cli
from rich.console import Console
from rich.text import Text
from state_db import copy_of, new_state

from fulcrum_sync.catalog import active_contexts, demo_catalog
from fulcrum_sync.domain import Grain
from fulcrum_sync.patterns.registry import REGISTRY
from fulcrum_sync.render.table import Column, command_lines, print_fitted, shorten

PERIOD = "2025-09-30"
CONTEXTS = sorted({c.context.to_string() for c in active_contexts(demo_catalog(), Grain.DAY)})
PATTERNS = sorted(REGISTRY)
WORDS = ["succeeded", "unchanged", "skipped", "already done"]


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """acme synced for one day, the cache loaded, a two-day backfill done."""
    with new_state(tmp_path_factory, "fit") as (path, cli):
        cli.ok("sync", "-g", "day", "-p", PERIOD, "-t", "acme")
        cli.ok("cache-load", "-g", "day")
        cli.ok("backfill", "-g", "day", "--start", "2025-09-28", "--end", PERIOD, "-t", "acme")
    return path


@pytest.fixture
def cli(state: Path, tmp_path: Path) -> Cli:
    """The CLI on a copy of the module's database."""
    return Cli.demo(copy_of(state, tmp_path))


SCREENS = {
    "status": ("status",),
    "status --verbose": ("status", "--verbose"),
    "runs": ("runs",),
    "cache-load --force": ("cache-load", "-g", "day", "--force"),
    "patterns list": ("patterns", "list"),
    "backfill summary": (
        "backfill",
        "-g",
        "day",
        "--start",
        "2025-09-27",
        "--end",
        PERIOD,
        "-t",
        "acme",
    ),
}


def _broken(text: str, word: str) -> bool:
    """Whether ``word`` appears cut across two lines (the end of one, the start of the next)."""
    lines = [line.rstrip() for line in text.splitlines()]
    for above, below in itertools.pairwise(lines):
        joined = above + below.lstrip()
        if word in joined and word not in above and word not in below:
            return True
    return False


@pytest.mark.parametrize("width", [80, 120])
@pytest.mark.parametrize("screen", list(SCREENS))
def test_a_screen_fits_the_width_and_never_breaks_an_identifier(
    cli: Cli, screen: str, width: int
) -> None:
    result = cli(*SCREENS[screen], env={"COLUMNS": str(width)})
    assert result.exit_code in (0, 1), result.output  # status is 1 when something is behind
    text = result.stdout
    too_long = [line for line in text.splitlines() if len(line) > width]
    assert not too_long, f"{screen} at {width}:\n{text}"
    names = {
        "patterns list": PATTERNS,
        "cache-load --force": CONTEXTS,
        "status --verbose": CONTEXTS,
    }.get(screen, [])
    for name in [*names, *WORDS]:
        assert not _broken(text, name), f"{name!r} broken in {screen} at {width}:\n{text}"
    for name in names:
        assert any(name in line for line in text.splitlines()), f"{name} missing:\n{text}"


def test_cache_load_names_every_context_whole_and_says_what_it_hid(cli: Cli) -> None:
    result = cli("cache-load", "-g", "day", env={"COLUMNS": "80"})
    lines = result.stdout.splitlines()
    for context in CONTEXTS:
        (row,) = [line for line in lines if line.startswith(context + " ")]
        assert row.split()[-1] in ("unchanged", "skipped"), row
    hidden = next(line for line in lines if line.startswith("hidden at 80 columns:"))
    assert "table" in hidden and "(see --json)" in " ".join(lines)
    data = json.loads(cli("cache-load", "-g", "day", "--json", env={"COLUMNS": "80"}).stdout)
    assert {"table", "window", "size_mb"} <= set(data["contexts"][0])  # --json keeps all


def test_runs_at_80_shows_the_id_command_start_and_outcome(cli: Cli) -> None:
    lines = cli("runs", env={"COLUMNS": "80"}).stdout.splitlines()
    header = next(line for line in lines if line.startswith("run id"))
    assert header.split()[:3] == ["run", "id", "command"] and header.rstrip().endswith("outcome")
    assert any(re.match(r"[0-9a-f]{8}\s+backfill\s", line) for line in lines)


def _render(width: int, columns: tuple[Column, ...], rows: list[tuple[str, ...]]) -> list[str]:
    console = Console(width=width, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    dropped = print_fitted(console, None, columns, rows, hidden="--json")
    lines = console.export_text().splitlines()
    return [*lines, f"dropped={','.join(dropped)}"]


def test_columns_go_highest_drop_first_and_are_named_under_the_table() -> None:
    columns = (
        Column("context"),
        Column("window", drop=3),
        Column("time", "right", drop=1),
        Column("cache", drop=2),
        Column("status"),
    )
    row = ("acme::new_revenue", "2025-01-01..2025-09-30", "0.25s", "succeeded", "unchanged")
    wide = _render(120, columns, [row])
    assert wide[-1] == "dropped=" and "2025-01-01..2025-09-30" in wide[2]
    narrow = _render(60, columns, [row])
    assert narrow[-1] == "dropped=window"
    assert narrow[2].split() == ["acme::new_revenue", "0.25s", "succeeded", "unchanged"]
    assert "hidden at 60 columns: window (see --json)" in narrow
    narrower = _render(30, columns, [row])
    assert narrower[-1] == "dropped=window,time,cache"  # named in the table's order


def test_an_identifier_that_must_shrink_keeps_both_ends_around_a_middle_ellipsis() -> None:
    columns = (Column("context"), Column("pattern"), Column("status"))
    rows = [("acme::a_very_long_metric_name_indeed", "dimension_analysis", "succeeded")]
    lines = _render(44, columns, rows)
    assert all(len(line) <= 44 for line in lines), lines
    (row,) = [line for line in lines if "succeeded" in line]
    assert "…" in row and row.startswith("acme::") and "succeeded" in row
    assert str(shorten(Text("acme::new_revenue"), 12)) == "acme::…venue"
    assert str(shorten(Text("unchanged"), 12)) == "unchanged"


def test_free_text_wraps_at_spaces_and_the_identifier_beside_it_stays_whole() -> None:
    columns = (Column("context"), Column("error", fold=True))
    rows = [("umbrella::patients_new", "the source refused the query: HTTP 400 " * 3)]
    lines = _render(50, columns, rows)
    assert all(len(line) <= 50 for line in lines), lines
    assert sum("umbrella::patients_new" in line for line in lines) == 1
    assert not any(line.rstrip().endswith(("refus", "sour")) for line in lines)


def test_a_long_command_breaks_between_arguments_with_a_continuation() -> None:
    command = (
        "fulcrum-sync backfill --grain day --start 2025-10-01 --end 2026-12-04 "
        "--tenant acme --metric active_users"
    )
    lines = command_lines(command, 80, "    fix: ")
    assert all(len(line) <= 80 for line in lines), lines
    assert lines[0].endswith(" \\") and lines[1].lstrip().startswith("--")
    rebuilt = " ".join(line.removesuffix(" \\").strip() for line in lines)
    assert rebuilt == "fix: " + command
    assert command_lines("fulcrum-sync status", 80, "fix: ") == ["fix: fulcrum-sync status"]


def test_a_scheduled_catch_up_keeps_periods_and_cache_ahead_of_time_at_120(
    sqlite_cli: Cli,
) -> None:
    cli = sqlite_cli  # a fresh database
    first = cli("sync", "-g", "day", "-t", "acme", env={"FULCRUM_SYNC_TODAY": "2025-08-06"})
    assert first.exit_code == 0, first.output
    scheduled = ("sync", "-g", "day", "--catch-up", "--cache-load", "-t", "acme")
    result = cli(*scheduled, env={"FULCRUM_SYNC_TODAY": "2025-08-10", "COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.startswith("context"))
    assert {"periods", "cache", "status"} <= set(header.split()), result.stdout
    assert all(len(line) <= 120 for line in lines), result.stdout
    row = next(line for line in lines if line.startswith("acme::orders "))
    assert "2025-08-06..2025-08-09 (4)" in row
    hidden = " ".join(result.stdout.split()).partition("hidden at 120 columns:")[2]
    assert "periods" not in hidden and "cache" not in hidden.partition("(see")[0]


@pytest.mark.parametrize("width", [60, 80])
def test_series_show_fits_a_long_sparkline_and_the_slices(cli: Cli, width: int) -> None:
    for extra in ([], ["-d", "region"]):
        args = ("series", "show", "acme::new_revenue", "-g", "day", "--last", "90", *extra)
        result = cli(*args, env={"COLUMNS": str(width)})
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        assert all(len(line) <= width for line in lines), result.stdout
        assert any("min " in line and "last " in line for line in lines)
