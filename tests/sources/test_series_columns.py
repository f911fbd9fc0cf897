"""Rows as columns (issue 26): a source's columns reach ``sanitize`` and the digests without a
tuple per row, and give exactly what the same rows as a list give."""

from __future__ import annotations

import math
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fulcrum_sync.catalog import active_contexts, demo_catalog
from fulcrum_sync.domain import Grain, SkipCounts, SyncType, compute_window
from fulcrum_sync.domain.columns import ColumnRows
from fulcrum_sync.services.run.sync_context import sanitize, series_request
from fulcrum_sync.sources.base import SeriesColumns, SeriesRow
from fulcrum_sync.sources.demo import DemoSource
from fulcrum_sync.store.digests import CleanRows

D0 = date(2025, 7, 1)


def test_column_rows_read_as_the_list_of_their_rows():
    rows = ColumnRows([(D0, D0 + timedelta(1), D0 + timedelta(2)), [1.0, 2.0, 3.0]])
    listed = [(D0, 1.0), (D0 + timedelta(1), 2.0), (D0 + timedelta(2), 3.0)]
    assert len(rows) == 3 and bool(rows) and not ColumnRows([(), []])
    assert rows[1:] == listed[1:] and isinstance(rows[1:], list)
    assert rows[-1] == listed[-1] and list(rows) == listed
    assert rows == listed and rows == tuple(listed) and rows != listed[:2]
    assert rows.columns[1] == [1.0, 2.0, 3.0]
    assert repr(rows) == f"ColumnRows({listed!r})"
    with pytest.raises(TypeError):
        hash(rows)


def test_series_columns_make_series_rows():
    base = SeriesColumns([D0, D0 + timedelta(1)], [1.5, None])
    assert list(base) == [SeriesRow(D0, 1.5, None), SeriesRow(D0 + timedelta(1), None, None)]
    assert type(base[0]) is SeriesRow and base[0].value == 1.5
    split = SeriesColumns([D0, D0], [1.0, 2.0], ["a", "b"])
    assert split[1:] == [SeriesRow(D0, 2.0, "b")] and type(split[1:][0]) is SeriesRow


VALUES = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.none(), st.integers(-2, 2))


@settings(max_examples=300, deadline=None)
@given(
    data=st.lists(
        st.tuples(st.integers(0, 4), VALUES, st.one_of(st.none(), st.sampled_from("abc"))),
        max_size=30,
    ),
    dimensional=st.booleans(),
)
def test_unvouched_columns_are_sanitized_as_their_rows_are(
    data: list[tuple[int, float | None, str | None]], dimensional: bool
):
    dates = [D0 + timedelta(days=d) for d, _, _ in data]
    values = [v for _, v, _ in data]
    slices = [s for *_, s in data] if dimensional else None
    columns = SeriesColumns(dates, values, slices)
    assert sanitize(columns, dimensional) == sanitize(list(columns), dimensional)


def test_vouched_columns_are_taken_as_they_are():
    dates, values, slices = [D0, D0, D0 + timedelta(1)], [1.0, 2.0, 3.0], ["a", "b", "a"]
    clean, skipped = sanitize(SeriesColumns(dates, values, slices, clean=True), True)
    assert isinstance(clean, CleanRows) and skipped == SkipCounts()
    assert clean == [(D0, "a", 1.0), (D0, "b", 2.0), (D0 + timedelta(1), "a", 3.0)]
    assert clean.named.values is values  # not copied, nor checked row by row
    # A base series asked for as a dimension (or the other way round) is checked, not vouched.
    base, skipped = sanitize(SeriesColumns(dates[:1], values[:1], clean=True), True)
    assert base == [] and skipped.null_slice == 1


@pytest.mark.parametrize("grain", list(Grain))
@pytest.mark.parametrize("null_rate", [0.0, 0.2])
def test_the_demo_vouches_only_for_what_it_checked(grain: Grain, null_rate: float):
    source = DemoSource(7, null_rate=null_rate)
    window = compute_window(grain, date(2025, 12, 3), SyncType.FULL, date(2025, 7, 1))
    contexts = active_contexts(demo_catalog(), grain)
    seen = 0
    for ctx in contexts:
        for dim in (None, *ctx.metric.dimensions):
            rows = source.fetch_series(series_request(ctx, dim, window))
            if isinstance(rows, SeriesColumns):
                assert rows.clean == (null_rate == 0)
                seen += rows.clean
            # Vouched or not, the columns sanitize to what the rows as a list sanitize to.
            assert sanitize(rows, dim is not None) == sanitize(list(rows), dim is not None)
            values = [r.value for r in rows]
            assert null_rate > 0 or all(isinstance(v, float) and math.isfinite(v) for v in values)
    assert seen > 0 or null_rate > 0
