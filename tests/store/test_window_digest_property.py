"""The window digest (store/digests.py) lets a sync skip reading back only the rows that
really are what the previous sync wrote: whatever the written and the fetched rows, a skip
of ``k`` rows means the first ``k`` fetched rows equal the written rows from the fetched
window's first date to the last written date; an unchanged window shifted by up to
``SUFFIXES - 1`` dates is always skipped."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fulcrum_sync.store import digests
from fulcrum_sync.store.digests import CleanRows, Columns

D0 = date(2025, 7, 1)
SLICES = ("a", "b", "c", "")
VALUES = st.sampled_from([0.0, -0.0, 1.0, 2.0, 0.5, 1e300])


@st.composite
def written(draw: st.DrawFn, dimensional: bool) -> list[tuple[Any, ...]]:
    """Date-ordered rows, some dates without rows, a dimension's slices in any order."""
    rows: list[tuple[Any, ...]] = []
    for i in range(draw(st.integers(1, 9))):
        day = D0 + timedelta(days=i)
        if not dimensional:
            if draw(st.booleans()) or i == 0:
                rows.append((day, draw(VALUES)))
            continue
        names = draw(st.lists(st.sampled_from(SLICES), unique=True, min_size=i == 0, max_size=3))
        rows += [(day, s, draw(VALUES)) for s in names]
    return rows


def _mutated(draw: st.DrawFn, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """``rows`` with one change a source might make (or none)."""
    rows = list(rows)
    kind = draw(st.sampled_from(["none", "value", "drop", "insert", "swap", "slice", "gap"]))
    if not rows or kind == "none":
        return rows
    i = draw(st.integers(0, len(rows) - 1))
    if kind == "value":
        rows[i] = (*rows[i][:-1], draw(VALUES))
    elif kind == "drop":
        del rows[i]
    elif kind == "insert":
        rows.insert(i, rows[i])
    elif kind == "swap" and i + 1 < len(rows) and rows[i][0] == rows[i + 1][0]:
        rows[i], rows[i + 1] = rows[i + 1], rows[i]
    elif kind == "slice" and len(rows[i]) == 3:
        rows[i] = (rows[i][0], draw(st.sampled_from(SLICES)), rows[i][2])
    elif kind == "gap":  # a row on a date that had none, near the start, in date order
        near = [rows[0][0] + timedelta(days=k) for k in range(1, 4)]
        missing = [d for d in near if d not in {r[0] for r in rows}]
        if missing:
            day = draw(st.sampled_from(missing))
            rows.insert(sum(r[0] <= day for r in rows), (day, *rows[i][1:]))
    return rows


def _as_clean(rows: list[tuple[Any, ...]], dimensional: bool, columns: bool) -> Any:
    """The rows as ``sanitize`` hands them over: a list, or :class:`CleanRows`."""
    if not columns or not rows:
        return rows
    cols = list(zip(*rows, strict=True))
    clean = CleanRows(Columns(cols[0], cols[-1], cols[1] if dimensional else None))
    assert clean == rows
    return clean


def _exact(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [(*r[:-1], r[-1].hex()) for r in rows]  # -0.0 is not 0.0 here


@settings(max_examples=600, deadline=None)
@given(data=st.data(), dimensional=st.booleans(), columns=st.booleans())
def test_a_skip_is_taken_only_over_rows_stored_as_they_are(
    data: st.DataObject, dimensional: bool, columns: bool
) -> None:
    old = data.draw(written(dimensional))
    days = sorted({r[0] for r in old})
    since = data.draw(st.sampled_from([None, *days[:3]]))
    kept = digests.encode(digests.prepare(_as_clean(old, dimensional, columns), dimensional), since)
    assert kept.startswith("v2;")
    start = data.draw(st.sampled_from(days))  # the next window's first date
    fetched = [r for r in old if r[0] >= start]
    fetched = _mutated(data.draw, fetched)
    later = days[-1] + timedelta(days=1)
    fetched += [(later, *r[1:]) for r in old[-2:]]  # the new period's rows
    prepared = digests.prepare(_as_clean(fetched, dimensional, columns), dimensional)
    if prepared is None:
        return
    known = digests.unchanged_prefix(prepared, kept)
    expected = [r for r in old if r[0] >= fetched[0][0]]
    if known is not None:
        assert fetched[:known] == expected
        assert all(r[0] > days[-1] for r in fetched[known:])
    first = days.index(fetched[0][0]) if fetched[0][0] in days else None
    from_since = days.index(since) if since in days else 0
    unchanged = _exact([r for r in fetched if r[0] <= days[-1]]) == _exact(expected)
    if unchanged and first is not None and from_since <= first < from_since + digests.SUFFIXES:
        assert known == len(expected)  # unchanged rows from a kept date: skipped
