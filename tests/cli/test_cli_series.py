"""``series show``: stored values as a table and sparkline, CSV that pandas reads back, JSON."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
from cli_invoke import Cli, Ran
from sqlalchemy import select
from state_db import copy_of, new_state

from fulcrum_sync.render.numbers import SPARK_BLOCKS
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import open_engine

PERIOD = "2025-09-30"


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite state database after ``sync --grain day --tenant acme --metric new_revenue``."""
    args = ["sync", "-g", "day", "-p", PERIOD, "-t", "acme", "-m", "new_revenue", "--no-patterns"]
    with new_state(tmp_path_factory, "series") as (path, cli):
        cli.ok(*args)
    return path


@pytest.fixture
def url(synced: Path, tmp_path: Path) -> str:
    return copy_of(synced, tmp_path)


def show(url: str, *args: str, **env: str) -> Ran:
    return Cli.demo(url, **env)("series", "show", "acme::new_revenue", "-g", "day", *args)


def stored(url: str, dimension: str | None = None) -> pd.DataFrame:
    engine = open_engine(url)
    if dimension is None:
        c = t.metric_time_series.c
        query = select(c.date, c.value).where(c.metric_id == "new_revenue", c.grain == "day")
    else:
        c = t.metric_dimensional_time_series.c
        query = select(c.date, c.dimension_name, c.dimension_slice, c.value).where(
            c.metric_id == "new_revenue", c.grain == "day", c.dimension_name == dimension
        )
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(*query.selected_columns[:-1])).all()
    engine.dispose()
    columns = ["date", "value"] if dimension is None else ["date", "dimension", "slice", "value"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


def test_csv_reads_back_in_pandas_equal_to_the_stored_rows(url: str) -> None:
    result = show(url, "--from", "2025-07-01", "--to", PERIOD, "--csv")
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(io.StringIO(result.stdout), parse_dates=["date"])
    expected = stored(url)
    assert len(frame) == 92
    pd.testing.assert_frame_equal(frame, expected, check_dtype=False)

    dims = show(url, "--dimension", "region", "--from", "2025-07-01", "--csv")
    frame = pd.read_csv(io.StringIO(dims.stdout), parse_dates=["date"])
    pd.testing.assert_frame_equal(frame, stored(url, "region"), check_dtype=False)


def test_terminal_shows_a_sparkline_and_the_last_periods(url: str) -> None:
    result = show(url, "--last", "14", COLUMNS="80")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "acme::new_revenue day (base): 14 periods 2025-09-17..2025-09-30"
    spark = lines[1].split()[0]
    assert len(spark) == 14 and set(spark) <= set(SPARK_BLOCKS)
    assert SPARK_BLOCKS[0] in spark and SPARK_BLOCKS[-1] in spark
    dates = [line.split()[0] for line in lines if line.startswith("2025-")]
    assert dates[0] == "2025-09-17" and dates[-1] == PERIOD and len(dates) == 14
    value = stored(url).set_index("date")["value"][pd.Timestamp(PERIOD)]
    assert f"{value:,.2f}" in result.stdout  # as stored, decimals aligned
    assert all(len(line) <= 80 for line in lines)


def test_json_and_a_dimension_side_by_side(url: str) -> None:
    result = show(url, "--dimension", "region", "--last", "3", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["context"] == "acme::new_revenue" and payload["dimension"] == "region"
    assert {r["date"] for r in payload["rows"]} == {"2025-09-28", "2025-09-29", PERIOD}
    assert {r["slice"] for r in payload["rows"]} == {"apac", "emea", "latam", "na"}
    table = show(url, "--dimension", "region", "--last", "3")
    header = next(line for line in table.stdout.splitlines() if line.startswith("date"))
    assert header.split() == ["date", "apac", "emea", "latam", "na"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--last", "5", "--from", "2025-09-01"], "--last and --from/--to name the range twice"),
        (["--csv", "--json"], "--csv and --json both claim stdout"),
        (["--dimension", "colour"], "unknown dimension 'colour' for acme::new_revenue"),
        (["--from", "2025-13-01"], "invalid period '2025-13-01'"),
    ],
)
def test_bad_input_is_one_line_exit_2(url: str, args: list[str], message: str) -> None:
    result = show(url, *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_unknown_context_is_exit_2(url: str) -> None:
    env = {"FULCRUM_SYNC_DATABASE_URL": url}
    result = Cli(env=env)("series", "show", "acme::nope", "-g", "day")
    assert result.exit_code == 2 and "unknown metric 'nope' for tenant acme" in result.stderr
    result = Cli(env=env)("series", "show", "acme", "-g", "day")
    assert result.exit_code == 2 and "invalid context 'acme'" in result.stderr
