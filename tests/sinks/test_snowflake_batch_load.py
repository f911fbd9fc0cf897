"""Snowflake loads in a few round trips: one staged file, one COPY, every table replaced by an
INSERT OVERWRITE in one transaction per request; counted on fakesnow through a counting
connection; tables equal their data; a reader never sees an empty table; a bad table fails
alone."""

from __future__ import annotations

import queue
import sys
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from state_db import copy_of
from typer.testing import CliRunner

from fulcrum_sync.config import load_settings
from fulcrum_sync.domain import Grain, SinkError
from fulcrum_sync.services.cache import load as cache_load
from fulcrum_sync.sinks.destinations import snowflake_destinations
from fulcrum_sync.sinks.identifiers import CacheTable
from fulcrum_sync.sinks.snowflake import SnowflakeConfig, SnowflakeSink
from fulcrum_sync.sinks.snowflake.batch import TABLES_PER_REQUEST
from fulcrum_sync.store.cache import read_cache_frame
from fulcrum_sync.store.engine import open_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.snowflake_counting import FakeAccount

PASSWORD = "batch-Pw#9-unique-snowflake-password"
LOADED_AT = datetime(2025, 7, 3, 4, 5, 6, tzinfo=UTC)
runner = CliRunner()


def _settings(url: str) -> Any:
    return load_settings(
        database_url=url,
        cache_target="snowflake",
        snowflake_account="acme-xy12345",
        snowflake_user="FULCRUM_LOADER",
        snowflake_password=PASSWORD,
    )


@pytest.fixture
def state(demo_day_synced: Path, tmp_path: Path) -> str:
    return copy_of(demo_day_synced, tmp_path)


def _frame(seed: int, days: int) -> pd.DataFrame:
    start = date(2025, 7, 1)
    records: list[tuple[Any, ...]] = []
    for i in range(days):
        day = start + timedelta(days=i)
        records.append((day, None, None, seed * 1000.0 + i + 0.125))
        records.append((day, "region", f'e"u,{seed}', seed + i / 7))  # quote and comma in text
        records.append((day, "channel", "", float(i)))  # an empty slice stays ''
    return pd.DataFrame.from_records(
        records, columns=["date", "dimension_name", "dimension_slice", "value"]
    )


def _table_rows(account: FakeAccount, table: CacheTable) -> list[tuple[Any, ...]]:
    database, schema, name = table.qualified.split(".")
    rows = account.query(
        f'SELECT "DATE", "DIMENSION_NAME", "DIMENSION_SLICE", "VALUE" '
        f'FROM "{database}"."{schema}"."{name}"'
    )
    return sorted(rows, key=repr)


def _frame_rows(frame: pd.DataFrame) -> list[tuple[Any, ...]]:
    clean = frame.astype(object).where(frame.notna(), None)
    return sorted((tuple(r) for r in clean.itertuples(index=False, name=None)), key=repr)


def _sink(account: FakeAccount) -> SnowflakeSink:
    config = SnowflakeConfig.from_settings(_settings("sqlite://"))
    sink = SnowflakeSink(config, connect=account.connect)
    sink.open()
    return sink


def test_a_forced_reload_of_the_demo_tables_takes_about_one_statement_per_table(
    state: str,
) -> None:
    account = FakeAccount(PASSWORD)
    engine = open_engine(state)
    try:
        settings = _settings(state)
        first = cache_load.run(
            engine, settings, snowflake_destinations(settings, account.connect), Grain.DAY
        )
        assert first.outcome == "succeeded" and len(first.contexts) == 9
        account.counter.reset()
        again = cache_load.run(
            engine,
            settings,
            snowflake_destinations(settings, account.connect),
            Grain.DAY,
            force=True,
        )
    finally:
        engine.dispose()
    assert {c.status for c in again.contexts} == {"succeeded"}
    log = account.counter.log
    # tables exist: 1 existence query, 2 setup, PUT, COPY, BEGIN + 9 INSERT OVERWRITE + COMMIT,
    # 1 size query = 17 statements for 9 tables (was 81: 9 a table, plus write_pandas's)
    assert account.counter.statements == 17, log
    assert sum(s.startswith("INSERT OVERWRITE INTO") for s in log) == 9
    assert sum(s.startswith("PUT ") for s in log) == 1
    assert sum(s.startswith("COPY INTO") for s in log) == 1
    assert sum("INFORMATION_SCHEMA" in s for s in log) == 2
    assert not any(s.startswith(("DELETE", "DROP", "SELECT COUNT")) for s in log)
    # round trips as a real account counts them: login, existence query, the setup request,
    # PUT (its query and the upload), COPY, one request for the 9 tables, the size query
    assert account.counter.round_trips == 8
    by = {c.context: c for c in again.contexts}
    rows = by["acme::orders"].rows
    assert rows > 0 and by["acme::orders"].size_mb is not None


def test_tables_equal_the_state_data_after_a_load(state: str) -> None:
    account = FakeAccount(PASSWORD)
    engine = open_engine(state)
    try:
        settings = _settings(state)
        result = cache_load.run(
            engine, settings, snowflake_destinations(settings, account.connect), Grain.DAY
        )
        assert result.outcome == "succeeded"
        for res in result.contexts:
            tenant, metric = res.context.split("::")
            tenant_id = {"acme": 1, "initech": 2, "umbrella": 3}[tenant]
            frame = read_cache_frame(engine, tenant_id, metric, "day")
            table = CacheTable(res.table.split(".")[-1], res.table)
            assert _table_rows(account, table) == _frame_rows(frame), res.context
            assert res.rows == len(frame)
    finally:
        engine.dispose()


def test_many_tables_load_in_one_batch_and_equal_their_frames() -> None:
    account = FakeAccount(PASSWORD)
    sink = _sink(account)
    count = TABLES_PER_REQUEST + 30  # two requests
    tables = [sink.table_for("acme", f"m{i}", Grain.DAY) for i in range(count)]
    frames = [_frame(i, 3 + i % 5) for i in range(count)]
    batch = sink.batch()
    try:
        for table, frame in zip(tables, frames, strict=True):
            batch.add(table, frame, Grain.DAY, LOADED_AT)
        outcomes = batch.load()
    finally:
        batch.close()
        sink.close()
    assert all(not isinstance(o, Exception) for o in outcomes.values())
    for table, frame in zip(tables, frames, strict=True):
        assert _table_rows(account, table) == _frame_rows(frame)
        assert outcomes[table.qualified].rows == len(frame)  # type: ignore[union-attr]
    overwrites = [s for s in account.counter.log if s.startswith("INSERT OVERWRITE")]
    assert len(overwrites) == count
    grains = account.query(
        'SELECT DISTINCT "GRAIN", "LOADED_AT" FROM "FULCRUM"."CACHE"."CACHE_ACME_M0_DAY"'
    )
    assert grains == [("day", datetime(2025, 7, 3, 4, 5, 6))]


class Reader(threading.Thread):
    """A reader on its own connection: counts every table's rows whenever asked."""

    def __init__(self, account: FakeAccount, tables: list[CacheTable]) -> None:
        super().__init__(daemon=True)
        self.account, self.tables = account, tables
        self.asks: queue.Queue[str | None] = queue.Queue()
        self.done: queue.Queue[None] = queue.Queue()
        self.seen: list[tuple[str, dict[str, int]]] = []

    def run(self) -> None:
        while (sql := self.asks.get()) is not None:
            counts = {}
            for t in self.tables:
                database, schema, name = t.qualified.split(".")
                query = f'SELECT COUNT(*) FROM "{database}"."{schema}"."{name}"'
                counts[t.name] = int(self.account.query(query)[0][0])
            self.seen.append((sql, counts))
            self.done.put(None)

    def after(self, sql: str) -> None:
        """Called after each statement of the load: wait until the reader has looked."""
        self.asks.put(sql)
        self.done.get(timeout=60)


def test_a_reader_during_the_load_never_sees_an_empty_table() -> None:
    account = FakeAccount(PASSWORD)
    sink = _sink(account)
    tables = [sink.table_for("acme", f"r{i}", Grain.DAY) for i in range(5)]
    try:
        for i, table in enumerate(tables):  # the old rows: 2 days each
            sink.replace(table, _frame(i, 2), Grain.DAY, LOADED_AT)
        reader = Reader(account, tables)
        reader.start()
        account.counter.after_statement.append(reader.after)
        batch = sink.batch()
        try:
            for i, table in enumerate(tables):  # the new rows: 4 days each
                batch.add(table, _frame(i + 10, 4), Grain.DAY, LOADED_AT)
            outcomes = batch.load()
        finally:
            batch.close()
            account.counter.after_statement.clear()
            reader.asks.put(None)
            reader.join(timeout=60)
    finally:
        sink.close()
    assert all(not isinstance(o, Exception) for o in outcomes.values())
    statements = [sql for sql, _ in reader.seen]
    assert any(s.startswith("INSERT OVERWRITE") for s in statements)
    inside = False
    for sql, counts in reader.seen:
        inside = (inside or sql == "BEGIN") and sql != "COMMIT"
        assert set(counts.values()) <= {6, 12}, (sql, counts)  # old or new rows, never none
        if inside:
            assert set(counts.values()) == {6}, (sql, counts)  # the old rows until the COMMIT
    assert set(reader.seen[-1][1].values()) == {12}


def test_a_table_that_fails_fails_alone_and_keeps_its_rows() -> None:
    account = FakeAccount(PASSWORD)
    sink = _sink(account)
    good = [sink.table_for("acme", f"g{i}", Grain.DAY) for i in range(3)]
    bad = sink.table_for("acme", "bad", Grain.DAY)
    try:
        sink.replace(bad, _frame(1, 2), Grain.DAY, LOADED_AT)
        broken = _frame(2, 3)
        broken.loc[4, "value"] = None  # VALUE is NOT NULL: this table's INSERT fails
        batch = sink.batch()
        try:
            for table in [good[0], bad, *good[1:]]:
                batch.add(table, broken if table is bad else _frame(2, 3), Grain.DAY, LOADED_AT)
            outcomes = batch.load()
        finally:
            batch.close()
    finally:
        sink.close()
    assert isinstance(outcomes[bad.qualified], SinkError)
    assert f"cannot load {bad.qualified}" in str(outcomes[bad.qualified])
    for table in good:
        assert not isinstance(outcomes[table.qualified], Exception)
        assert len(_table_rows(account, table)) == 9
    assert len(_table_rows(account, bad)) == 6  # its old rows
