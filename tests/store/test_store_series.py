"""Bulk series writes on SQLite and PostgreSQL: counts, atomic replace, no-op upserts."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import Engine, func, select

from fulcrum_sync.domain import StoreError
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import translate_errors
from fulcrum_sync.store.series import READ_FIRST_ROWS, SeriesKey, replace_series, upsert_series

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


@pytest.mark.parametrize("size", [40, READ_FIRST_ROWS + 10])  # a window; a bulk write (COPY)
def test_upsert_counts_new_changed_and_unchanged_rows_whatever_the_size(engine: Engine, size: int):
    """Counts come from reading the window and from the write itself, never from COUNT(*)."""
    slices = ("a", "b", "c", "d", "e")
    start = [(d, s, 1.0) for d in days(size // len(slices)) for s in slices]
    with engine.begin() as conn:
        assert upsert_series(conn, DIM, start).inserted == len(start)
    rows = [(d, s, 3.0 if i % 7 == 0 else v) for i, (d, s, v) in enumerate(start)]
    rows += [(D0 - timedelta(days=1), s, 2.0) for s in slices]  # new, before the window
    other = SeriesKey(1, "revenue", "day", "channel")  # same dates, another dimension
    with engine.begin() as conn:
        upsert_series(conn, other, [(d, "zz", 9.0) for d in days(3)])
        counts = upsert_series(conn, DIM, rows)
    changed = sum(1 for i in range(len(start)) if i % 7 == 0)
    assert (counts.inserted, counts.updated, counts.unchanged) == (
        len(slices),
        changed,
        len(start) - changed,
    )
    data = stored(engine, DIM)
    assert len(data) == len(start) + len(slices) + 3  # the other dimension's 3 rows too
    assert data[(D0, "a")] == 3.0 and data[(D0 - timedelta(days=1), "e")] == 2.0
    with engine.begin() as conn:  # again: nothing to write
        again = upsert_series(conn, DIM, rows)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, len(rows))
