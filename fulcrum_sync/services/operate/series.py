"""``series show``: a context's stored values, for people (a table and a sparkline) or scripts."""

from __future__ import annotations

from sqlalchemy import Engine

from fulcrum_sync.domain import SeriesRequest, SeriesValues, shift_period
from fulcrum_sync.services.contexts.selection import resolve_context
from fulcrum_sync.store import state as store

DEFAULT_LAST = 30  # periods shown when neither --last nor --from/--to is given


def show(engine: Engine, request: SeriesRequest) -> SeriesValues:
    """Return the stored values of the base series (or one dimension's slices) in range.

    ``request.last`` counts periods back from the latest stored one; without it and without a
    range, the last :data:`DEFAULT_LAST` periods. Raises InputError for an unknown tenant,
    metric or dimension, StoreError when the database fails.
    """
    context = f"{request.tenant}::{request.metric}"
    tenant, metric = resolve_context(engine, context, request.dimension)
    grain = request.grain.value
    start, end = request.start, request.end
    last = request.last
    if last is None and start is None and end is None:
        last = DEFAULT_LAST
    if last is not None:
        latest = store.latest_value_date(
            engine, tenant.tenant_id, metric.metric_id, grain, request.dimension
        )
        if latest is None:
            return SeriesValues(request)
        start, end = shift_period(request.grain, latest, -(last - 1)), latest
    rows = store.read_values(
        engine, tenant.tenant_id, metric.metric_id, grain, request.dimension, start, end
    )
    return SeriesValues(request, rows)
