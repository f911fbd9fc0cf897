"""The local sink: cache tables in the state database (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, inspect, select, text

from fulcrum_sync.domain import Grain, InputError, SinkError
from fulcrum_sync.sinks.base import FRAME_COLUMNS, estimate_bytes
from fulcrum_sync.sinks.local import LocalSink, cache_table
from fulcrum_sync.store.cache import CACHE_FRAME_COLUMNS

LOADED_AT = datetime(2025, 7, 3, 4, 5, 6, tzinfo=UTC)


def _frame(days: int, *, scale: float = 1.0) -> pd.DataFrame:
    records: list[tuple[Any, ...]] = []
    for i in range(days):
        day = date(2025, 7, 1 + i)
        records.append((day, None, None, 100.0 * scale + i))
        records.append((day, "region", "eu", 10.0 * scale + i))
    return pd.DataFrame.from_records(records, columns=list(FRAME_COLUMNS))


def _rows(engine: Engine, name: str) -> list[tuple[Any, ...]]:
    table = cache_table(name)
    c = table.c
    query = select(c.date, c.dimension_name, c.dimension_slice, c.value, c.grain).order_by(
        c.dimension_name.is_not(None), c.dimension_name, c.date
    )
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(query)]


@pytest.fixture
def sink(engine: Engine) -> LocalSink:
    s = LocalSink(engine)
    s.open()
    return s


def test_frame_columns_match_the_store() -> None:
    assert FRAME_COLUMNS == CACHE_FRAME_COLUMNS


def test_table_names_are_lower_case_and_qualified(sink: LocalSink, engine: Engine) -> None:
    table = sink.table_for("acme", "new-revenue", Grain.DAY)
    assert table.name == "cache_acme_new_revenue_day"
    schema = "main" if engine.dialect.name == "sqlite" else engine.url.query["options"][14:]
    assert table.qualified == f"{schema}.cache_acme_new_revenue_day"
    long = sink.table_for("t" * 40, "m" * 40, Grain.MONTH)
    assert len(long.name) == 63  # PostgreSQL's limit, shortened with a hash


def test_hostile_names_are_refused(sink: LocalSink) -> None:
    with pytest.raises(InputError, match="invalid tenant"):
        sink.table_for('x"; drop table y; --', "orders", Grain.DAY)


def test_replace_creates_loads_and_reports_size(sink: LocalSink, engine: Engine) -> None:
    table = sink.table_for("acme", "orders", Grain.DAY)
    stats = sink.replace(table, _frame(3), Grain.DAY, LOADED_AT)
    assert stats.rows == 6
    assert not stats.size_estimated  # dbstat / pg_total_relation_size answered
    assert stats.size_bytes and stats.size_bytes >= 4096
    rows = _rows(engine, table.name)
    assert rows[0] == (date(2025, 7, 1), None, None, 100.0, "day")
    assert rows[3] == (date(2025, 7, 1), "region", "eu", 10.0, "day")
    with engine.connect() as conn:
        stamps = conn.execute(text(f'SELECT DISTINCT loaded_at FROM "{table.name}"')).all()
    assert len(stamps) == 1


def test_reload_replaces_not_appends(sink: LocalSink, engine: Engine) -> None:
    table = sink.table_for("acme", "orders", Grain.DAY)
    sink.replace(table, _frame(5), Grain.DAY, LOADED_AT)
    stats = sink.replace(table, _frame(2, scale=2.0), Grain.DAY, LOADED_AT)
    assert stats.rows == 4
    assert sorted(r[3] for r in _rows(engine, table.name)) == [20.0, 21.0, 200.0, 201.0]


def test_a_failed_load_keeps_the_old_rows(sink: LocalSink, engine: Engine) -> None:
    table = sink.table_for("acme", "orders", Grain.DAY)
    sink.replace(table, _frame(2), Grain.DAY, LOADED_AT)
    bad = _frame(2)
    bad.loc[3, "value"] = None  # NOT NULL: fails after the delete, inside the transaction
    with pytest.raises(SinkError, match=r"cannot load .*cache_acme_orders_day"):
        sink.replace(table, bad, Grain.DAY, LOADED_AT)
    assert len(_rows(engine, table.name)) == 4


def test_ensure_table_creates_empty_and_keeps_rows(sink: LocalSink, engine: Engine) -> None:
    table = sink.table_for("acme", "active_users", Grain.DAY)
    sink.ensure_table(table)
    assert inspect(engine).has_table(table.name)
    assert _rows(engine, table.name) == []
    sink.replace(table, _frame(1), Grain.DAY, LOADED_AT)
    sink.ensure_table(table)
    assert len(_rows(engine, table.name)) == 2


def test_estimate_bytes_counts_fixed_widths_and_strings() -> None:
    frame = _frame(2)
    assert estimate_bytes(frame, Grain.DAY) == 4 * (20 + 3) + 2 * (len("region") + len("eu"))
    assert estimate_bytes(frame.iloc[0:0], Grain.DAY) == 0


def test_concurrent_loads_of_one_table_never_mix(sink: LocalSink, engine: Engine) -> None:
    table = sink.table_for("acme", "orders", Grain.DAY)
    sink.ensure_table(table)
    errors: list[BaseException] = []

    def work(scale: float) -> None:
        for _ in range(6):
            try:
                LocalSink(engine).replace(table, _frame(30, scale=scale), Grain.DAY, LOADED_AT)
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in (1.0, 2.0, 3.0)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    rows = _rows(engine, table.name)
    assert len(rows) == 60  # one load's rows, never two loads' rows together
    assert len({round(r[3] // 100) for r in rows if r[1] is None}) == 1
