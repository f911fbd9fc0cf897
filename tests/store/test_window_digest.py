"""A digest of each written series window (issue 26, store/digests.py): an incremental sync
whose window is what it wrote skips reading it back and writing it; anything else is read
back and written as before."""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from fulcrum_sync.domain import Scope
from fulcrum_sync.store import digests, series
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.series import SeriesKey
from fulcrum_sync.store.state import StoreScope, delete_parts
from fulcrum_sync.store.sync_status import StatusUpdate
from fulcrum_sync.store.sync_write import SeriesWrite, write_context

BASE = SeriesKey(1, "revenue", "day")
DIM = SeriesKey(1, "revenue", "day", "region")
P0 = date(2025, 12, 1)
LOOKBACK = 90


def window(period: date, days: int = LOOKBACK) -> list[date]:
    return [period - timedelta(days=days - 1 - i) for i in range(days)]


def source(
    period: date, changed: dict[date, float] | None = None, days: int = LOOKBACK
) -> list[list[Any]]:
    """The base and dimension rows a source returns for ``period``'s window."""
    changed = changed or {}
    dates = window(period, days)
    base = [(d, changed.get(d, float(d.toordinal() % 97))) for d in dates]
    dim = [(d, s, float(d.toordinal() % 89) + k) for d in dates for k, s in enumerate("abc")]
    return [base, dim]


def sync(engine: Engine, period: date, rows: list[list[Any]], *, full: bool = False) -> list[Any]:
    """What a sync of ``period`` writes (``sync_context`` builds the same writes)."""
    since = window(period)[0]
    writes = [
        SeriesWrite(
            key,
            StatusUpdate(
                (1, "revenue", "day", key.dimension or ""),
                None,
                "FULL" if full else "INCREMENTAL",
                period,
                (since, period),
                "h",
                None,
            ),
            r,
            full=full,
            digest_from=since,
        )
        for key, r in zip((BASE, DIM), rows, strict=True)
    ]
    return write_context(engine, writes)[0]


def stored(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        base = conn.execute(select(t.metric_time_series).order_by(t.metric_time_series.c.date))
        dim = conn.execute(
            select(t.metric_dimensional_time_series).order_by(
                t.metric_dimensional_time_series.c.date,
                t.metric_dimensional_time_series.c.dimension_slice,
            )
        )
        return [tuple(r) for r in base] + [tuple(r) for r in dim]


def kept(engine: Engine) -> dict[str, str | None]:
    c = t.metric_sync_status.c
    with engine.connect() as conn:
        return dict(conn.execute(select(c.dimension, c.window_digest)).all())  # type: ignore[arg-type]


@pytest.fixture
def no_read_back(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Record every read-back of a stored window (the path the digest skips)."""
    reads: list[str] = []
    for name in ("_upsert_sqlite", "_upsert_postgres_window"):
        real = getattr(series, name)

        def spy(*a: Any, _real: Any = real, _name: str = name, **kw: Any) -> Any:
            reads.append(_name)
            return _real(*a, **kw)

        monkeypatch.setattr(series, name, spy)
    yield reads


def test_an_unchanged_window_is_neither_read_back_nor_written(
    engine: Engine, no_read_back: list[str]
) -> None:
    sync(engine, P0, source(P0), full=True)
    assert set(kept(engine)) == {"", "region"} and all(kept(engine).values())
    before = stored(engine)
    p1 = P0 + timedelta(days=1)
    base, dim = sync(engine, p1, source(p1))
    assert no_read_back == []  # the digest matched: nothing was read back
    assert (base.inserted, base.updated, base.unchanged) == (1, 0, LOOKBACK - 1)  # the new day
    assert (dim.inserted, dim.updated, dim.unchanged) == (3, 0, 3 * (LOOKBACK - 1))
    after = stored(engine)
    assert after[: len(before)] != [] and set(before) <= set(after)  # the old rows, as they were
    assert len(after) == len(before) + 4
    base, dim = sync(engine, p1, source(p1))  # the same period again (--force)
    assert (base.stored, dim.stored) == (0, 0) and no_read_back == []
    assert stored(engine) == after


def test_a_changed_value_in_the_source_is_stored(engine: Engine, no_read_back: list[str]) -> None:
    sync(engine, P0, source(P0), full=True)
    p1 = P0 + timedelta(days=1)
    sync(engine, p1, source(p1))
    p2, day = P0 + timedelta(days=2), P0 - timedelta(days=30)
    base, _ = sync(engine, p2, source(p2, {day: 1234.5}))
    assert len(no_read_back) == 1  # the base series: its digest no longer matched
    assert (base.inserted, base.updated) == (1, 1)
    with engine.connect() as conn:
        value = conn.execute(
            select(t.metric_time_series.c.value).where(t.metric_time_series.c.date == day)
        ).scalar_one()
    assert value == 1234.5
    p3 = P0 + timedelta(days=3)  # the new digest holds the changed value: no read-back
    base, _ = sync(engine, p3, source(p3, {day: 1234.5}))
    assert (base.inserted, base.updated) == (1, 0) and len(no_read_back) == 1


def test_a_value_edited_by_hand_stays_until_verify_reports_it(engine: Engine) -> None:
    """The digest is of what the sync wrote: an edit under an unchanged source is not seen
    by the sync (``verify`` compares source and state, its fix replaces the series)."""
    sync(engine, P0, source(P0), full=True)
    day = P0 - timedelta(days=10)
    with engine.begin() as conn:
        conn.execute(
            update(t.metric_time_series).where(t.metric_time_series.c.date == day).values(value=-1)
        )
    p1 = P0 + timedelta(days=1)
    base, _ = sync(engine, p1, source(p1))
    assert base.updated == 0
    with engine.connect() as conn:
        values = dict(
            conn.execute(select(t.metric_time_series.c.date, t.metric_time_series.c.value)).all()
        )  # type: ignore[arg-type]
    assert values[day] == -1
    sync(engine, p1, source(p1), full=True)  # `sync --force-full`
    with engine.connect() as conn:
        values = dict(
            conn.execute(select(t.metric_time_series.c.date, t.metric_time_series.c.value)).all()
        )  # type: ignore[arg-type]
    assert values[day] == float(day.toordinal() % 97)


def test_an_older_write_that_changes_rows_forgets_the_digest(
    engine: Engine, no_read_back: list[str]
) -> None:
    """A backfill of an older period leaves the status on the later period; when it changed
    rows, the later sync reads its window back (the digest no longer says what is stored)."""
    p1 = P0 + timedelta(days=1)
    sync(engine, P0, source(P0, days=120), full=True)
    sync(engine, p1, source(p1))
    older = P0 - timedelta(days=5)
    sync(engine, older, source(older))  # unchanged rows: the digest holds
    assert all(kept(engine).values())
    sync(engine, older, source(older, {older: 7.0}))
    assert kept(engine)[""] is None and kept(engine)["region"]
    no_read_back.clear()
    p2 = P0 + timedelta(days=2)
    base, _ = sync(engine, p2, source(p2))  # the source changed back: written again
    assert base.updated == 1 and len(no_read_back) == 1


def test_a_reset_of_values_forgets_the_digests(engine: Engine, no_read_back: list[str]) -> None:
    sync(engine, P0, source(P0), full=True)
    scope = StoreScope(Scope(start=P0 - timedelta(days=3)), 1)
    deleted, _ = delete_parts(engine, scope, ("dimension values",))
    assert deleted["dimension values"] == 12
    assert kept(engine)["region"] is None and kept(engine)[""]
    p1 = P0 + timedelta(days=1)
    _, dim = sync(engine, p1, source(p1))
    assert dim.inserted == 12 + 3 and len(no_read_back) == 1  # the deleted days come back


def test_digest_matches_only_its_own_rows_from_a_known_date() -> None:
    rows = [(d, float(i)) for i, d in enumerate(window(P0))]
    p = digests.prepare(rows, dimensional=False)
    assert p is not None
    kept_digest = digests.encode(p, rows[0][0])
    for shift in range(digests.SUFFIXES):
        moved = digests.prepare([*rows[shift:], (P0 + timedelta(days=1), 1.0)], False)
        assert moved is not None
        assert digests.unchanged_prefix(moved, kept_digest) == LOOKBACK - shift
    later = digests.prepare(rows[digests.SUFFIXES :], False)
    assert later is not None and digests.unchanged_prefix(later, kept_digest) is None
    changed = digests.prepare([*rows[1:-1], (rows[-1][0], 0.5)], False)
    assert changed is not None and digests.unchanged_prefix(changed, kept_digest) is None
    assert digests.prepare(list(reversed(rows)), False) is None  # not in date order
    assert digests.unchanged_prefix(p, "not a digest") is None
    renamed = digests.prepare([(P0, "x", 1.0)], True)
    same = digests.prepare([(P0, "y", 1.0)], True)
    day = P0.toordinal()
    assert renamed and same and renamed.suffixes([day], day) != same.suffixes([day], day)


def _old_format(rows: list[Any], dimensional: bool, since: date) -> str:
    """The digest the version before ``v2`` wrote: ``LAST;D1:HEX;…``, a BLAKE2b of each
    suffix whole (its dates as int64 ordinals, its values, its slices joined)."""
    ordinals = [r[0].toordinal() for r in rows]
    entries = [str(ordinals[-1])]
    for day in sorted(set(ordinals))[:4]:
        if day >= since.toordinal():
            at = ordinals.index(day)
            h = hashlib.blake2b(array("q", ordinals[at:]).tobytes(), digest_size=8)
            h.update(array("d", [r[-1] for r in rows[at:]]).tobytes())
            if dimensional:
                h.update("\x1f".join(r[1] for r in rows[at:]).encode())
            entries.append(f"{day}:{h.hexdigest()}")
    return ";".join(entries)


def test_a_digest_of_the_older_format_reads_the_window_back_once(
    engine: Engine, no_read_back: list[str]
) -> None:
    """A digest an earlier version wrote is unknown, not trusted: here it says the source's
    rows are stored while a stored value differs; the sync reads the window back, fixes the
    value and keeps a digest of the new format, which the next sync then trusts."""
    sync(engine, P0, source(P0), full=True)
    day = P0 - timedelta(days=10)
    with engine.begin() as conn:
        conn.execute(
            update(t.metric_time_series).where(t.metric_time_series.c.date == day).values(value=-1)
        )
        for (key, rows), dimensional in zip(
            zip((BASE, DIM), source(P0), strict=True), (False, True), strict=True
        ):
            conn.execute(
                update(t.metric_sync_status)
                .where(t.metric_sync_status.c.dimension == (key.dimension or ""))
                .values(window_digest=_old_format(rows, dimensional, window(P0)[1]))
            )
    assert not any(d.startswith("v2;") for d in kept(engine).values() if d)
    p1 = P0 + timedelta(days=1)
    base, dim = sync(engine, p1, source(p1))
    assert len(no_read_back) == 2  # both series: read back
    assert (base.inserted, base.updated, dim.inserted, dim.updated) == (1, 1, 3, 0)
    with engine.connect() as conn:
        value = conn.execute(
            select(t.metric_time_series.c.value).where(t.metric_time_series.c.date == day)
        ).scalar_one()
    assert value == float(day.toordinal() % 97)
    assert all(d and d.startswith("v2;") for d in kept(engine).values())
    p2 = P0 + timedelta(days=2)
    base, dim = sync(engine, p2, source(p2))
    assert len(no_read_back) == 2 and (base.inserted, dim.inserted) == (1, 3)
