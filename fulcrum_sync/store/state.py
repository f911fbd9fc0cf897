"""Scoped reads and deletes behind ``state show``, ``state reset`` and ``series show``.

A scope narrows every table the same way: tenant, metric, grain, dimension and a range of
period starts (per-period records only). A reset deletes every part it was given in one
transaction; run keys a live process holds or means to do (pending, released or failed keys
its run adopted) are left alone and counted as held.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Table,
    and_,
    delete,
    func,
    not_,
    or_,
    select,
    true,
    update,
)

from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import translate_errors
from fulcrum_sync.store.runs import OPEN_STATUSES, owner_is_dead
from fulcrum_sync.store.versions import bump_matching

if TYPE_CHECKING:  # only named in annotations: a job reading its progress need not load it
    from fulcrum_sync.domain import Scope


@dataclass(frozen=True, slots=True)
class StoreScope:
    """A :class:`Scope` with its tenant resolved to the numeric id most tables key on."""

    scope: Scope
    tenant_id: int | None

    @property
    def grain(self) -> str | None:
        return self.scope.grain.value if self.scope.grain else None


def _match(column: Any, value: Any) -> ColumnElement[bool]:
    return true() if value is None else column == value


def _in_range(column: Any, s: Scope) -> ColumnElement[bool]:
    return and_(
        true() if s.start is None else column >= s.start,
        true() if s.end is None else column <= s.end,
    )


def _by_id(table: Table, s: StoreScope) -> ColumnElement[bool]:
    c = table.c
    return and_(
        _match(c.tenant_id, s.tenant_id),
        _match(c.metric_id, s.scope.metric),
        _match(c.grain, s.grain),
    )


def _keys(kind: str, s: StoreScope) -> ColumnElement[bool] | None:
    c = t.run_items.c
    where = and_(
        c.kind == kind,
        _match(c.tenant, s.scope.tenant),
        _match(c.metric_id, s.scope.metric),
        _match(c.grain, s.grain),
        _in_range(c.period, s.scope),
    )
    dim = s.scope.dimension
    if dim is None:
        return where
    if kind == "sync":
        return None  # a sync key covers every series of its context, not one dimension
    # pattern:{grain}:{period}:{tenant}::{metric}::{pattern}:{dimension}
    suffix = c.run_key.endswith(f":{dim}", autoescape=True)
    return and_(where, suffix, not_(c.run_key.endswith(f"::{dim}", autoescape=True)))


def part_filter(part: str, s: StoreScope) -> tuple[Table, ColumnElement[bool]] | None:
    """The table and the rows of ``part`` in scope; None when the scope excludes the part."""
    dim = s.scope.dimension
    if part == "sync status":
        table = t.metric_sync_status
        return table, and_(_by_id(table, s), _match(table.c.dimension, dim))
    if part in ("sync keys", "pattern keys"):
        where = _keys(part.split()[0], s)
        return None if where is None else (t.run_items, where)
    if part == "base values":
        table = t.metric_time_series
        return None if dim else (table, and_(_by_id(table, s), _in_range(table.c.date, s.scope)))
    if part == "dimension values":
        table = t.metric_dimensional_time_series
        where = and_(
            _by_id(table, s), _match(table.c.dimension_name, dim), _in_range(table.c.date, s.scope)
        )
        return table, where
    if part == "pattern results":
        table = t.pattern_results
        where = and_(
            _by_id(table, s),
            _match(table.c.dimension, dim),
            _in_range(table.c.analysis_period, s.scope),
        )
        return table, where
    if part == "cache loads":
        return None if dim else (t.cache_loads, _by_id(t.cache_loads, s))
    raise ValueError(f"unknown part {part!r}")


def live_runs(conn: Connection) -> list[str]:
    """The runs whose record says ``running`` and whose process is not known to be gone."""
    r = t.runs.c
    rows = conn.execute(select(r.run_id, r.host, r.pid).where(r.outcome == "running")).all()
    return [row.run_id for row in rows if not owner_is_dead(f"{row.host}:{row.pid}")]


def held_keys(now: datetime, live: list[str]) -> ColumnElement[bool]:
    """Run keys a live process holds (running, lease not expired) or means to do (not yet
    started, adopted by a live run: ``runs.ensure_items``)."""
    c = t.run_items.c
    running = and_(c.status == "running", c.lease_expires_at > now)
    if not live:
        return running
    adopted = func.coalesce(c.run_id, "").in_(live)  # NULL would make NOT(held) NULL too
    return or_(running, and_(c.status.in_(OPEN_STATUSES), adopted))


def _unheld(
    conn: Connection, part: str, s: StoreScope, now: datetime
) -> tuple[Table, ColumnElement[bool], int] | None:
    """The part's table and its rows in scope that no live process holds, with the count of
    run keys a live process holds (0 for other tables); None when the part has no rows in
    this scope."""
    found = part_filter(part, s)
    if found is None:
        return None
    table, where = found
    if table is not t.run_items:
        return table, where, 0
    held = held_keys(now, live_runs(conn))
    count = select(func.count()).select_from(table)
    held_count = conn.execute(count.where(and_(where, held))).scalar_one()
    return table, and_(where, not_(held)), held_count


def count_parts(
    engine: Engine, s: StoreScope, parts: tuple[str, ...]
) -> tuple[dict[str, int], int]:
    """Return the rows of each part in scope, and the run keys in scope a live process holds."""
    now = datetime.now(UTC)
    counts: dict[str, int] = {}
    held = 0
    with translate_errors(engine, "count state in"), engine.connect() as conn:
        for part in parts:
            found = _unheld(conn, part, s, now)
            if found is None:
                counts[part] = 0
                continue
            table, where, part_held = found
            held += part_held
            counts[part] = conn.execute(
                select(func.count()).select_from(table).where(where)
            ).scalar_one()
    return counts, held


def delete_parts(
    engine: Engine, s: StoreScope, parts: tuple[str, ...]
) -> tuple[dict[str, int], int]:
    """Delete every part's rows in scope in one transaction; return the rows deleted per part
    and the run keys left alone because a live process holds them. Raises StoreError."""
    now = datetime.now(UTC)
    deleted: dict[str, int] = {}
    held = 0
    with translate_errors(engine, "reset state in"), engine.begin() as conn:
        for part in parts:
            found = _unheld(conn, part, s, now)
            if found is None:
                deleted[part] = 0
                continue
            table, where, part_held = found
            held += part_held
            deleted[part] = conn.execute(delete(table).where(where)).rowcount or 0
            if deleted[part] and part in ("base values", "dimension values"):
                bump_matching(conn, _by_id(t.series_versions, s))  # the cache must follow
                _forget_digests(conn, part, s)
    return deleted, held


def _forget_digests(conn: Connection, part: str, s: StoreScope) -> None:
    """The series whose rows were deleted sync their window again in full (store/digests.py:
    a digest says what its sync wrote, and those rows are gone)."""
    c = t.metric_sync_status.c
    which = c.dimension == "" if part == "base values" else c.dimension != ""
    where = and_(_by_id(t.metric_sync_status, s), which, _match(c.dimension, s.scope.dimension))
    conn.execute(update(t.metric_sync_status).where(where).values(window_digest=None))


def read_sync_status(engine: Engine, s: StoreScope) -> list[dict[str, Any]]:
    """Return the sync status rows in scope."""
    table, where = part_filter("sync status", s) or (t.metric_sync_status, true())
    query = select(table).where(where).order_by(table.c.dimension)
    with translate_errors(engine, "read sync status from"), engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def read_key_counts(engine: Engine, s: StoreScope) -> list[dict[str, Any]]:
    """Return run-key counts per (tenant, metric, grain, kind, status) with their period span."""
    c = t.run_items.c
    out: list[dict[str, Any]] = []
    with translate_errors(engine, "read run keys from"), engine.connect() as conn:
        for kind in ("sync", "pattern"):
            where = _keys(kind, s)
            if where is None:
                continue
            query = (
                select(
                    c.tenant,
                    c.metric_id,
                    c.grain,
                    c.kind,
                    c.status,
                    func.count().label("count"),
                    func.min(c.period).label("first_period"),
                    func.max(c.period).label("last_period"),
                )
                .where(where)
                .group_by(c.tenant, c.metric_id, c.grain, c.kind, c.status)
            )
            out.extend(dict(r._mapping) for r in conn.execute(query))
    return out


def read_synced_periods(engine: Engine, s: StoreScope) -> dict[tuple[str, str, str], set[date]]:
    """Return the periods whose sync key succeeded, per (tenant, metric, grain)."""
    c = t.run_items.c
    where = _keys("sync", StoreScope(replace(s.scope, dimension=None), s.tenant_id))
    assert where is not None  # only a dimension excludes sync keys
    query = select(c.tenant, c.metric_id, c.grain, c.period).where(
        and_(where, c.status == "succeeded")
    )
    out: dict[tuple[str, str, str], set[date]] = {}
    with translate_errors(engine, "read run keys from"), engine.connect() as conn:
        for r in conn.execute(query):
            out.setdefault((r.tenant, r.metric_id, r.grain), set()).add(as_date(r.period))
    return out


def read_pattern_index(engine: Engine, s: StoreScope) -> list[dict[str, Any]]:
    """Return (tenant_id, metric, grain, pattern, dimension, period, status) of stored results."""
    p = t.pattern_results.c
    _, where = part_filter("pattern results", s) or (t.pattern_results, true())
    query = select(
        p.tenant_id, p.metric_id, p.grain, p.pattern, p.dimension, p.analysis_period, p.status
    ).where(where)
    with translate_errors(engine, "read pattern results from"), engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def read_cache_loads(engine: Engine, s: StoreScope) -> list[dict[str, Any]]:
    """Return the recorded cache loads in scope (none when the scope names a dimension)."""
    found = part_filter("cache loads", s)
    if found is None:
        return []
    table, where = found
    with translate_errors(engine, "read cache loads from"), engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(table).where(where))]


def read_values(
    engine: Engine,
    tenant_id: int,
    metric_id: str,
    grain: str,
    dimension: str | None,
    start: date | None,
    end: date | None,
) -> list[tuple[date, str | None, float]]:
    """Return stored ``(date, slice, value)`` rows of a base series or one dimension, by date."""
    if dimension is None:
        b = t.metric_time_series.c
        query = select(b.date, b.value).where(
            and_(b.tenant_id == tenant_id, b.metric_id == metric_id, b.grain == grain)
        )
        date_col = b.date
    else:
        d = t.metric_dimensional_time_series.c
        query = select(d.date, d.dimension_slice, d.value).where(
            and_(
                d.tenant_id == tenant_id,
                d.metric_id == metric_id,
                d.grain == grain,
                d.dimension_name == dimension,
            )
        )
        date_col = d.date
    if start is not None:
        query = query.where(date_col >= start)
    if end is not None:
        query = query.where(date_col <= end)
    query = query.order_by(*query.selected_columns[:-1])
    with translate_errors(engine, "read series from"), engine.connect() as conn:
        rows = conn.execute(query).all()
    if dimension is None:
        return [(as_date(r[0]), None, float(r[-1])) for r in rows]
    return [(as_date(r[0]), r[1], float(r[-1])) for r in rows]


def latest_value_date(
    engine: Engine, tenant_id: int, metric_id: str, grain: str, dimension: str | None
) -> date | None:
    """Return the latest stored date of a base series or one dimension (None if empty)."""
    if dimension is None:
        c: Any = t.metric_time_series.c
        where = and_(c.tenant_id == tenant_id, c.metric_id == metric_id, c.grain == grain)
    else:
        c = t.metric_dimensional_time_series.c
        where = and_(
            c.tenant_id == tenant_id,
            c.metric_id == metric_id,
            c.grain == grain,
            c.dimension_name == dimension,
        )
    with translate_errors(engine, "read series from"), engine.connect() as conn:
        latest = conn.execute(select(func.max(c.date)).where(where)).scalar()
    return None if latest is None else as_date(latest)


def as_date(value: Any) -> date:
    """Return a date column value as a ``datetime.date`` (SQLite may hand back text)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    return value  # type: ignore[no-any-return]
