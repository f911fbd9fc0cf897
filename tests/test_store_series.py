"""Bulk series writes on SQLite and PostgreSQL: counts, atomic replace, no-op upserts."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import Engine, func, select

from fulcrum_sync.domain import StoreError
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import translate_errors
from fulcrum_sync.store.series import SeriesKey, replace_series, upsert_series

BASE = SeriesKey(1, "revenue", "day")
DIM = SeriesKey(1, "revenue", "day", "region")
D0 = date(2025, 7, 1)


def days(n: int, start: date = D0) -> list[date]:
    return [start + timedelta(days=i) for i in range(n)]


def stored(engine: Engine, key: SeriesKey) -> dict[tuple[object, ...], float]:
    table = key.table
    with engine.connect() as conn:
        rows = conn.execute(select(table)).mappings().all()
    if key.dimension:
        return {(r["date"], r["dimension_slice"]): r["value"] for r in rows}
    return {(r["date"],): r["value"] for r in rows}


def test_replace_then_upsert_counts(engine: Engine):
    with engine.begin() as conn:
        counts = replace_series(conn, BASE, [(d, 10.0) for d in days(10)])
    assert (counts.inserted, counts.deleted) == (10, 0)

    rows = [(d, 10.0) for d in days(10)]  # unchanged
    rows[3] = (rows[3][0], 99.0)  # changed
    rows += [(D0 + timedelta(days=10), 5.0), (D0 + timedelta(days=11), 6.0)]  # new
    with engine.begin() as conn:
        counts = upsert_series(conn, BASE, rows)
    assert (counts.inserted, counts.updated, counts.unchanged) == (2, 1, 9)
    data = stored(engine, BASE)
    assert len(data) == 12 and data[(D0 + timedelta(days=3),)] == 99.0


def test_dimensional_upsert_counts(engine: Engine):
    rows = [(d, s, 1.0) for d in days(5) for s in ("emea", "apac")]
    with engine.begin() as conn:
        assert upsert_series(conn, DIM, rows).inserted == 10
    rows[0] = (rows[0][0], "emea", 2.0)
    with engine.begin() as conn:
        counts = upsert_series(conn, DIM, rows)
    assert (counts.inserted, counts.updated, counts.unchanged) == (0, 1, 9)


def test_full_replace_drops_rows_outside_new_data(engine: Engine):
    with engine.begin() as conn:
        replace_series(conn, BASE, [(d, 1.0) for d in days(30)])
        replace_series(conn, SeriesKey(2, "other", "day"), [(D0, 7.0)])
    with engine.begin() as conn:
        counts = replace_series(conn, BASE, [(d, 2.0) for d in days(5, D0 + timedelta(days=40))])
    assert counts.deleted == 30 and counts.inserted == 5
    with engine.connect() as conn:
        other = conn.execute(
            select(func.count())
            .select_from(t.metric_time_series)
            .where(t.metric_time_series.c.tenant_id == 2)
        ).scalar_one()
    assert other == 1  # other series untouched


def test_failed_replace_leaves_old_series_whole(engine: Engine):
    with engine.begin() as conn:
        replace_series(conn, BASE, [(d, 1.0) for d in days(20)])
    bad = [(d, 3.0) for d in days(10)] + [(D0, None)]  # NULL value violates NOT NULL
    with pytest.raises(StoreError), translate_errors(engine, "write"), engine.begin() as conn:
        replace_series(conn, BASE, bad)  # type: ignore[arg-type]
    data = stored(engine, BASE)
    assert len(data) == 20 and set(data.values()) == {1.0}


def test_upsert_empty_is_noop(engine: Engine):
    with engine.begin() as conn:
        counts = upsert_series(conn, BASE, [])
    assert counts.stored == 0 and stored(engine, BASE) == {}
