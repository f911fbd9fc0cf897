"""Data versions: raised by the writes that change a context's series, and migration 0003."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from importlib import resources

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, column, insert, inspect, select, table
from typer.testing import CliRunner

from fulcrum_sync.cli import app
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import HEAD_REVISION, current_revision, open_engine, upgrade
from fulcrum_sync.store.series import SeriesKey
from fulcrum_sync.store.sync_status import StatusUpdate
from fulcrum_sync.store.sync_write import SeriesWrite, write_context
from fulcrum_sync.store.versions import read_versions

D0 = date(2025, 7, 1)
DAYS = [D0 + timedelta(days=i) for i in range(5)]


def write(engine: Engine, key: SeriesKey, rows: list[tuple[object, ...]], full: bool) -> None:
    status = StatusUpdate(
        (key.tenant_id, key.metric_id, key.grain, key.dimension or ""),
        None,
        "FULL" if full else "INCREMENTAL",
        DAYS[-1],
        (DAYS[0], DAYS[-1]),
        "h",
        None,
    )
    write_context(engine, [SeriesWrite(key, status, list(rows), full=full, rows_fetched=len(rows))])


def test_only_writes_that_change_rows_raise_the_version(engine: Engine) -> None:
    base, region = SeriesKey(1, "orders", "day"), SeriesKey(1, "orders", "day", "region")
    other = SeriesKey(1, "revenue", "day")
    write(engine, base, [(d, 1.0) for d in DAYS], full=True)
    assert read_versions(engine, "day") == {(1, "orders", "day"): 1}
    write(engine, base, [(d, 1.0) for d in DAYS], full=False)  # an upsert of the same rows
    write(engine, region, [], full=False)  # nothing fetched
    assert read_versions(engine, "day") == {(1, "orders", "day"): 1}
    write(engine, base, [(DAYS[0], 2.0)], full=False)  # one changed value
    write(engine, region, [(DAYS[0], "eu", 3.0)], full=False)  # a dimension's new row
    write(engine, other, [(DAYS[0], 1.0)], full=False)
    assert read_versions(engine, "day") == {(1, "orders", "day"): 3, (1, "revenue", "day"): 1}
    assert read_versions(engine, "week") == {}


def test_a_0002_database_is_upgraded_in_place_and_its_cache_reloads_once(db_url: str) -> None:
    engine = open_engine(db_url, migrate=False)
    config = Config()
    location = resources.files("fulcrum_sync").joinpath("store", "migrations")
    config.set_main_option("script_location", str(location))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0002")
    assert current_revision(engine) == "0002"
    assert "series_versions" not in inspect(engine).get_table_names()
    runner = CliRunner()
    env = {"FULCRUM_SYNC_DATABASE_URL": db_url, "FULCRUM_SYNC_LOG_FORMAT": "rich"}
    with engine.begin() as conn:  # stored at 0002: series and a load, without versions
        conn.execute(
            insert(t.metric_time_series),
            [
                {"tenant_id": 1, "metric_id": "orders", "grain": "day", "date": d, "value": 1.0}
                for d in DAYS
            ],
        )
        row = {"tenant_id": 1, "metric_id": "orders", "grain": "day", "target": "local"}
        row |= {"table_name": "main.cache_acme_orders_day", "rows_loaded": 5, "status": "succeeded"}
        row |= {"loaded_at": datetime.now(UTC)}
        at_0002 = [column(c.name, c.type) for c in t.cache_loads.c if c.name != "data_version"]
        conn.execute(insert(table("cache_loads", *at_0002)), [row])

    assert upgrade(engine) == HEAD_REVISION
    assert read_versions(engine) == {(1, "orders", "day"): 1}  # seeded from the stored series
    with engine.connect() as conn:
        assert conn.execute(select(t.cache_loads.c.data_version)).scalar_one() is None
    indexes = {i["name"] for i in inspect(engine).get_indexes("run_items")}
    assert "ix_run_items_latest" in indexes

    assert runner.invoke(app, ["discover", "--grain", "day"], env=env).exit_code == 0
    load = ["cache-load", "--grain", "day", "--tenant", "acme", "--metric", "orders", "--json"]
    first = runner.invoke(app, load, env=env)
    assert first.exit_code == 0, first.output
    assert [c["status"] for c in json.loads(first.stdout)["contexts"]] == ["succeeded"]
    second = runner.invoke(app, load, env=env)
    assert [c["status"] for c in json.loads(second.stdout)["contexts"]] == ["unchanged"]
    scope = ["--tenant", "acme", "--metric", "orders", "--grain", "day"]
    reset = ["state", "reset", *scope, "--what", "series", "--from", "2025-07-05", "--yes"]
    assert runner.invoke(app, reset, env=env).exit_code == 0  # deleted values: a change too
    third = json.loads(runner.invoke(app, load, env=env).stdout)["contexts"]
    assert [(c["status"], c["rows"]) for c in third] == [("succeeded", 4)]
    engine.dispose()
