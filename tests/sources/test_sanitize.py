"""``sanitize`` (rewritten for speed in issue 19) keeps, drops and counts as it did."""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fulcrum_sync.domain import SkipCounts
from fulcrum_sync.services.run.sync_context import sanitize
from fulcrum_sync.sources.base import SeriesRow


def _reference(rows: list[SeriesRow], dimensional: bool) -> tuple[list[Any], SkipCounts]:
    """The implementation before issue 19."""
    skipped = SkipCounts()
    kept: dict[tuple[date, str | None], float] = {}
    for row in rows:
        value = row.value
        if value is None:
            skipped.null_value += 1
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            skipped.non_finite += 1
            continue
        if not math.isfinite(number):
            skipped.non_finite += 1
            continue
        if dimensional and row.slice is None:
            skipped.null_slice += 1
            continue
        key = (row.date, str(row.slice) if dimensional else None)
        if key in kept:
            skipped.duplicate += 1
        kept[key] = number
    if dimensional:
        return [(d, s, v) for (d, s), v in kept.items()], skipped
    return [(d, v) for (d, _), v in kept.items()], skipped


VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-5, 5),
    st.none(),
    st.sampled_from(["1.5", "21738.00", "nan", "inf", "x", ""]),
    st.booleans(),
)
ROWS = st.lists(
    st.builds(
        SeriesRow,
        st.integers(0, 6).map(lambda i: date(2025, 7, 1) + timedelta(days=i)),
        VALUES,
        st.one_of(st.none(), st.sampled_from(["a", "b", "c"])),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(rows=ROWS, dimensional=st.booleans())
def test_sanitize_keeps_drops_and_counts_as_before(rows: list[SeriesRow], dimensional: bool):
    clean, skipped = sanitize(rows, dimensional)
    expected, expected_skipped = _reference(rows, dimensional)
    assert clean == expected
    assert skipped == expected_skipped


CLEAN_ROWS = st.lists(  # nothing to drop: sanitize's column-by-column path (but duplicates)
    st.builds(
        SeriesRow,
        st.integers(0, 3).map(lambda i: date(2025, 7, 1) + timedelta(days=i)),
        st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.just(1e308)),
        st.sampled_from(["a", "b", "c"]),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(rows=CLEAN_ROWS, dimensional=st.booleans())
def test_rows_with_nothing_to_drop_keep_the_last_value_of_a_key_in_its_first_place(
    rows: list[SeriesRow], dimensional: bool
):
    clean, skipped = sanitize(rows, dimensional)
    expected, expected_skipped = _reference(rows, dimensional)
    assert clean == expected
    assert [type(v) for *_, v in clean] == [float] * len(clean)
    assert skipped == expected_skipped
