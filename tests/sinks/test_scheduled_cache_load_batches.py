"""``sync --cache-load`` (the scheduled path) loads each destination's changed tables in one
batch: a few requests per destination whatever the number of tables, counted on fakesnow;
the tables equal the state data; a table that fails fails only its context's load."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner, Result

from fulcrum_sync.cli import app
from fulcrum_sync.services.deps import Deps
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.cache import read_cache_frame
from fulcrum_sync.store.engine import open_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.snowflake_counting import FakeAccount

PASSWORD = "sched-Pw#4-unique-snowflake-password"
TENANT_IDS = {"acme": 1, "initech": 2, "umbrella": 3}
runner = CliRunner()
# Per destination and batch, besides one INSERT OVERWRITE (and, on a first load, one CREATE
# TABLE) per table: the existence query, the temporary stage and batch table, PUT, COPY,
# BEGIN, COMMIT, the size query.
FIXED_STATEMENTS = 8
# login, existence query, setup request, PUT (query + upload), COPY, one request for up to
# 250 tables, size query
ROUND_TRIPS = 8


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite state database after a day sync of the demo catalog (no cache load)."""
    path = tmp_path_factory.mktemp("synced") / "state.db"
    env = {"FULCRUM_SYNC_DATABASE_URL": f"sqlite:///{path}", "FULCRUM_SYNC_LOG_FORMAT": "json"}
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(path.parent)
        result = runner.invoke(app, ["sync", "-g", "day", "--no-patterns"], env=env)
    assert result.exit_code == 0, result.output
    return path


@pytest.fixture
def state(synced: Path, tmp_path: Path) -> str:
    copy = tmp_path / "state.db"
    shutil.copy(synced, copy)
    return f"sqlite:///{copy}"


def _sync(url: str, account: FakeAccount, *args: str, log_format: str = "json") -> Result:
    env = {
        "FULCRUM_SYNC_DATABASE_URL": url,
        "FULCRUM_SYNC_LOG_FORMAT": log_format,
        "FULCRUM_SYNC_CACHE_TARGET": "snowflake",
        "FULCRUM_SYNC_SNOWFLAKE_ACCOUNT": "acme-xy12345",
        "FULCRUM_SYNC_SNOWFLAKE_USER": "FULCRUM_LOADER",
        "FULCRUM_SYNC_SNOWFLAKE_PASSWORD": PASSWORD,
    }
    command = ["sync", "-g", "day", "--no-patterns", "--cache-load", *args]
    return runner.invoke(app, command, env=env, obj=Deps(snowflake_connect=account.connect))


def _table_rows(account: FakeAccount, qualified: str) -> list[tuple[Any, ...]]:
    database, schema, name = qualified.split(".")
    rows = account.query(
        'SELECT "DATE", "DIMENSION_NAME", "DIMENSION_SLICE", "VALUE" '
        f'FROM "{database}"."{schema}"."{name}"'
    )
    return sorted(rows, key=repr)


def _assert_tables_equal_state(url: str, account: FakeAccount, loaded: dict[str, str]) -> None:
    """Each ``{context: table}`` holds exactly its context's stored rows."""
    engine = open_engine(url)
    try:
        for context, table in loaded.items():
            tenant, metric = context.split("::")
            frame = read_cache_frame(engine, TENANT_IDS[tenant], metric, "day")
            clean = frame.astype(object).where(frame.notna(), None)
            expected = sorted((tuple(r) for r in clean.itertuples(index=False)), key=repr)
            assert len(expected) > 0 and _table_rows(account, table) == expected, context
    finally:
        engine.dispose()


def _per_table(log: list[str]) -> int:
    return sum(s.startswith(("INSERT OVERWRITE", "CREATE TABLE IF NOT EXISTS")) for s in log)


def test_a_scheduled_load_takes_the_same_few_requests_for_3_or_9_tables(
    synced: Path, tmp_path: Path
) -> None:
    counts: dict[int, tuple[int, int, int]] = {}
    for name, args in (("all.db", ()), ("acme.db", ("--tenant", "acme"))):
        shutil.copy(synced, tmp_path / name)
        url = f"sqlite:///{tmp_path / name}"
        account = FakeAccount(PASSWORD)
        result = _sync(url, account, "--json", *args)
        assert result.exit_code == 0, result.output
        contexts = json.loads(result.stdout)["contexts"]
        assert {c["cache"]["status"] for c in contexts} == {"succeeded"}
        log = account.counter.log
        tables = len(contexts)
        assert sum(s.startswith("INSERT OVERWRITE") for s in log) == tables
        counts[tables] = (account.counter.statements, _per_table(log), account.counter.round_trips)
        tables_of = {c["context"]: c["cache"]["table"] for c in contexts}
        _assert_tables_equal_state(url, account, tables_of)
    assert sorted(counts) == [3, 9]
    for tables, (statements, per_table, round_trips) in counts.items():
        # one destination: a fixed number of statements besides each table's own (its
        # CREATE on this first load and its INSERT OVERWRITE), and a fixed number of requests
        assert per_table == 2 * tables
        assert statements - per_table == FIXED_STATEMENTS, (tables, statements)
        assert round_trips == ROUND_TRIPS, (tables, round_trips)  # was 7 per table + login


@pytest.mark.parametrize("log_format", ["json", "rich"])
def test_a_failing_table_fails_only_its_context(state: str, log_format: str) -> None:
    account = FakeAccount(PASSWORD)
    # acme::orders's table exists with a column the load cannot fill: its INSERT fails
    account.query("CREATE DATABASE IF NOT EXISTS FULCRUM")
    account.query("CREATE SCHEMA IF NOT EXISTS FULCRUM.CACHE")
    account.query(
        'CREATE TABLE "FULCRUM"."CACHE"."CACHE_ACME_ORDERS_DAY" ("DATE" DATE NOT NULL, '
        '"DIMENSION_NAME" VARCHAR, "DIMENSION_SLICE" VARCHAR, "VALUE" FLOAT NOT NULL, '
        '"GRAIN" VARCHAR NOT NULL, "LOADED_AT" TIMESTAMP_NTZ NOT NULL, "EXTRA" VARCHAR NOT NULL)'
    )
    result = _sync(state, account, log_format=log_format)
    assert result.exit_code == 1, result.output  # partial: one cache load failed
    if log_format == "json":
        events = [json.loads(line) for line in result.stdout.splitlines() if line[:1] == "{"]
        finished = [e for e in events if e.get("event") == "sync finished"]
        assert finished[-1]["outcome"] == "partial", finished
        lines = {
            f"{e['tenant']}::{e['metric']}": e
            for e in events
            if e.get("event") in ("context synced", "context skipped", "context failed")
        }
        assert lines["acme::orders"]["cache"] == "failed"
        assert "CACHE_ACME_ORDERS_DAY" in lines["acme::orders"]["error"]
        assert {v["cache"] for k, v in lines.items() if k != "acme::orders"} == {"succeeded"}
        assert len(lines) == 9
    else:
        assert "CACHE_ACME_ORDERS_DAY" in result.output
    env = {"FULCRUM_SYNC_DATABASE_URL": state}
    runs = json.loads(runner.invoke(app, ["runs", "--json"], env=env).stdout)
    assert runs[0]["outcome"] == "partial"
    engine = open_engine(state)
    try:
        with engine.connect() as conn:
            query = select(t.cache_loads.c.metric_id, t.cache_loads.c.status)
            loads = {metric: status for metric, status in conn.execute(query)}
            keys = {r[0] for r in conn.execute(select(t.run_items.c.status))}
    finally:
        engine.dispose()
    assert loads.pop("orders") == "failed"  # acme's (no other tenant has a day orders)
    assert set(loads.values()) == {"succeeded"}
    assert "running" not in keys
    assert _table_rows(account, "FULCRUM.CACHE.CACHE_ACME_ORDERS_DAY") == []  # left as it was
    others = {
        f"{tenant}::{metric}": f"FULCRUM.CACHE.CACHE_{tenant.upper()}_{metric.upper()}_DAY"
        for tenant, metric in (("initech", "mrr"), ("acme", "new_revenue"))
    }
    _assert_tables_equal_state(state, account, others)
