"""Read a context's stored series for the cache, and record each cache load.

The loads themselves are taken before they are done by store/cache_claims.py.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Table,
    and_,
    delete,
    insert,
    select,
    tuple_,
)

from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import reconnecting, translate_errors
from fulcrum_sync.store.versions import ContextKey, read_version

if TYPE_CHECKING:
    import pandas as pd

# The frame's columns; base rows have no dimension (None). sinks/base.py loads this shape.
CACHE_FRAME_COLUMNS = ("date", "dimension_name", "dimension_slice", "value")


@dataclass(frozen=True, slots=True)
class CacheLoadRecord:
    """One row of ``cache_loads``: the last load of a context into one target."""

    tenant_id: int
    metric_id: str
    grain: str
    target: str
    table_name: str
    rows_loaded: int
    size_mb: float | None
    window_start: date | None
    window_end: date | None
    status: str  # succeeded | skipped | failed
    error: str | None
    loaded_at: datetime
    duration_seconds: float | None
    data_version: int | None = None  # the context's data version this load read


@dataclass(frozen=True, slots=True)
class LoadBaseline:
    """What a load compares: the context's data version now, and its last load's."""

    version: int | None  # None: no series write recorded a version yet
    last_status: str | None  # of the last load into the target (None: never loaded)
    last_version: int | None
    last_loaded_at: datetime | None

    @property
    def unchanged(self) -> bool:
        """True when the last load succeeded and read the version stored now."""
        return (
            self.version is not None
            and self.last_status == "succeeded"
            and self.last_version == self.version
        )


@reconnecting
def read_cache_frame(engine: Engine, tenant_id: int, metric_id: str, grain: str) -> pd.DataFrame:
    """Return the context's base and dimensional series as one frame, base rows first.

    Columns are :data:`CACHE_FRAME_COLUMNS`; ``date`` holds ``datetime.date`` values. Both
    series are read in one transaction. Raises StoreError.
    """
    import pandas as pd

    base, dims = t.metric_time_series, t.metric_dimensional_time_series
    with translate_errors(engine, "read the stored series from"), engine.connect() as conn:
        base_rows = conn.execute(
            select(base.c.date, base.c.value)
            .where(_context(base, tenant_id, metric_id, grain))
            .order_by(base.c.date)
        ).all()
        dim_rows = conn.execute(
            select(dims.c.date, dims.c.dimension_name, dims.c.dimension_slice, dims.c.value)
            .where(_context(dims, tenant_id, metric_id, grain))
            .order_by(dims.c.dimension_name, dims.c.dimension_slice, dims.c.date)
        ).all()
    records = [(r.date, None, None, r.value) for r in base_rows]
    records += [(r.date, r.dimension_name, r.dimension_slice, r.value) for r in dim_rows]
    return pd.DataFrame.from_records(records, columns=list(CACHE_FRAME_COLUMNS))


def _context(table: Table, tenant_id: int, metric_id: str, grain: str) -> ColumnElement[bool]:
    c = table.c
    return and_(c.tenant_id == tenant_id, c.metric_id == metric_id, c.grain == grain)


@reconnecting
def read_baseline(
    engine: Engine, tenant_id: int, metric_id: str, grain: str, target: str
) -> LoadBaseline:
    """Return the context's data version and its last load into ``target`` (one read)."""
    c = t.cache_loads.c
    query = select(c.status, c.data_version, c.loaded_at).where(
        and_(_context(t.cache_loads, tenant_id, metric_id, grain), c.target == target)
    )
    with translate_errors(engine, "read cache loads from"), engine.connect() as conn:
        version = read_version(conn, tenant_id, metric_id, grain)
        last = conn.execute(query).first()
    return _baseline(version, last)


def read_baselines(
    conn: Connection, target: str, keys: list[ContextKey]
) -> dict[ContextKey, LoadBaseline]:
    """:func:`read_baseline` of many contexts, on ``conn`` (two reads)."""
    if not keys:
        return {}
    v, c = t.series_versions.c, t.cache_loads.c
    versions = {
        (r[0], r[1], r[2]): r[3]
        for r in conn.execute(
            select(v.tenant_id, v.metric_id, v.grain, v.version).where(
                tuple_(v.tenant_id, v.metric_id, v.grain).in_(keys)
            )
        )
    }
    last = {
        (r[0], r[1], r[2]): r
        for r in conn.execute(
            select(c.tenant_id, c.metric_id, c.grain, c.status, c.data_version, c.loaded_at).where(
                and_(c.target == target, tuple_(c.tenant_id, c.metric_id, c.grain).in_(keys))
            )
        )
    }
    return {key: _baseline(versions.get(key), last.get(key)) for key in keys}


def _baseline(version: int | None, last: Any) -> LoadBaseline:
    """The baseline of a context of data version ``version`` whose last load is ``last``
    (a ``cache_loads`` row with ``status``, ``data_version``, ``loaded_at``; None: never)."""
    if last is None:
        return LoadBaseline(version, None, None, None)
    return LoadBaseline(version, last.status, last.data_version, last.loaded_at)


@reconnecting
def record_cache_load(engine: Engine, record: CacheLoadRecord) -> None:
    """Store ``record`` as the context's latest load into its target (replacing the last)."""
    table = t.cache_loads
    key = and_(
        table.c.tenant_id == record.tenant_id,
        table.c.metric_id == record.metric_id,
        table.c.grain == record.grain,
        table.c.target == record.target,
    )
    with translate_errors(engine, "record a cache load in"), engine.begin() as conn:
        conn.execute(delete(table).where(key))
        conn.execute(insert(table).values(**asdict(record)))


@reconnecting
def read_cache_loads(engine: Engine, grain: str | None = None) -> list[CacheLoadRecord]:
    """Return the recorded cache loads (of ``grain``, or all), by tenant, metric, target."""
    table = t.cache_loads
    query = select(table).order_by(
        table.c.grain, table.c.tenant_id, table.c.metric_id, table.c.target
    )
    if grain is not None:
        query = query.where(table.c.grain == grain)
    with translate_errors(engine, "read cache loads from"), engine.connect() as conn:
        return [CacheLoadRecord(**row._asdict()) for row in conn.execute(query)]
