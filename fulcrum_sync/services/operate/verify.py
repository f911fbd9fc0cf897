"""``verify``: does the stored data still match its source, and the cache the stored data?

For each selected context (or a deterministic sample of them): the stored window of the base
series and of each dimension is fetched again from the source and compared row by row with
the state database; dates inside the window the source returned nothing for are reported as
gaps (a pre-aggregation that does not cover the range drops them silently). Then the state
database is compared with the context's cache table, when it was ever loaded. Nothing is
written: each difference names the command that would fix it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine

from fulcrum_sync.catalog import ContextDef, DimensionDef
from fulcrum_sync.config import Settings
from fulcrum_sync.domain import (
    SourceDownError,
    Window,
    cache_load_command,
    iter_periods,
)
from fulcrum_sync.domain.catch_up import command
from fulcrum_sync.domain.verify import (
    ContextCheck,
    Difference,
    DiffKind,
    VerifyRequest,
    VerifyResult,
    same,
)
from fulcrum_sync.services.contexts.selection import select_contexts
from fulcrum_sync.services.run.sync_context import sanitize
from fulcrum_sync.sinks.base import CacheSink
from fulcrum_sync.sinks.destinations import CacheDestinations
from fulcrum_sync.sources.base import FetchRequest, Source
from fulcrum_sync.store import cache as cache_store
from fulcrum_sync.store.state import read_values

# (date, slice) -> value: one series, from any of the three copies.
Series = dict[tuple[date, str | None], float]


def run(
    engine: Engine,
    source: Source,
    sink: CacheSink | CacheDestinations | None,
    settings: Settings,
    request: VerifyRequest,
    on_result: Callable[[ContextCheck], None] | None = None,
) -> VerifyResult:
    """Compare source, state and cache for the contexts ``request`` selects; write nothing.

    ``sink`` None skips the cache comparison; given each tenant's destinations, every
    context is compared with the cache of its tenant's destination (each opened once, and
    closed at the end). Raises InputError (a bad scope, a tenant's unusable destination),
    StoreError, SinkError, SourceDownError (the source is unreachable: nothing can be
    compared).
    """
    request.check()
    result = VerifyResult(request, started_at=datetime.now(UTC))
    contexts = select_contexts(
        engine, settings, request.grain, request.tenant, request.metric, discover_first=False
    )
    result.selected = len(contexts)
    if request.sample is not None and request.sample < len(contexts):
        contexts = sorted(
            random.Random(request.seed).sample(contexts, request.sample),
            key=lambda c: c.context.to_string(),
        )
    destinations = (
        None
        if sink is None
        else sink
        if isinstance(sink, CacheDestinations)
        else CacheDestinations.single(sink)
    )
    opened: set[int] = set()
    try:
        for ctx in contexts:
            ctx_sink = None if destinations is None else destinations.sink_for(ctx.tenant)
            if ctx_sink is not None and id(ctx_sink) not in opened:
                ctx_sink.open()  # once per destination: tenants of one share the connection
                opened.add(id(ctx_sink))
            check = verify_context(engine, source, ctx_sink, ctx)
            result.contexts.append(check)
            if on_result is not None:
                on_result(check)
    finally:
        if isinstance(sink, CacheDestinations):
            sink.close()
    result.finished_at = datetime.now(UTC)
    return result


def verify_context(
    engine: Engine, source: Source, sink: CacheSink | None, ctx: ContextDef
) -> ContextCheck:
    """Compare one context's base series and dimensions with the source, then its cache."""
    name = ctx.context.to_string()
    check = ContextCheck(name)
    tenant_id, metric_id, grain = ctx.tenant.tenant_id, ctx.metric.metric_id, ctx.grain.value
    base = read_values(engine, tenant_id, metric_id, grain, None, None, None)
    state: dict[str | None, Series] = {None: _series(base)}
    for d in ctx.metric.dimensions:
        rows = read_values(engine, tenant_id, metric_id, grain, d.dimension_id, None, None)
        state[d.dimension_id] = _series(rows)
    days = [day for one in state.values() for day, _ in one]
    if not days:
        fix = command("sync", "--grain", grain, *_scope(ctx), "--force-full")
        check.differences.append(Difference(name, DiffKind.NOTHING_STORED, "base", fix=fix))
        return check
    check.window = Window(min(days), max(days))
    check.state_rows = sum(len(s) for s in state.values())
    series: list[DimensionDef | None] = [None, *ctx.metric.dimensions]
    for dim in series:
        stored = state[dim.dimension_id if dim else None]
        # Each series' own stored window (a dimension added later starts later).
        window = Window(min(d for d, _ in stored), max(d for d, _ in stored)) if stored else None
        window = window or check.window
        check.differences += _against_source(source, ctx, dim, check, window, stored)
    if sink is not None:
        check.differences += _against_cache(engine, sink, ctx, check, state)
    return check


def _scope(ctx: ContextDef) -> tuple[str, ...]:
    return ("--tenant", ctx.tenant.identifier, "--metric", ctx.metric.metric_id)


def _series(rows: Iterable[tuple[date, str | None, float]]) -> Series:
    return {(day, slice_): value for day, slice_, value in rows}


def _label(dim: str | None, slice_: str | None) -> str:
    return "base" if dim is None else f"{dim}={slice_}"


def _against_source(
    source: Source,
    ctx: ContextDef,
    dim: DimensionDef | None,
    check: ContextCheck,
    window: Window,
    stored: Series,
) -> list[Difference]:
    """The differences between the source's answer for ``window`` and the stored series."""
    name, dim_id = check.context, dim.dimension_id if dim else None
    fix = command("sync", "--grain", ctx.grain.value, *_scope(ctx), "--force-full")
    request = FetchRequest(
        tenant_id=ctx.tenant.tenant_id,
        tenant=ctx.tenant.identifier,
        metric=ctx.metric,
        grain=ctx.grain,
        window=window,
        dimension=dim,
        filters=ctx.tenant.filters,
    )
    try:
        rows, _skipped = sanitize(source.fetch_series(request), dimensional=dim is not None)
    except SourceDownError:
        raise
    except Exception as exc:  # one series failing does not stop the others
        label = _label(dim_id, None).split("=")[0]
        return [Difference(name, DiffKind.ERROR, label, detail=str(exc), fix="")]
    fetched: Series = (
        {(r[0], str(r[1])): float(r[2]) for r in rows}
        if dim is not None
        else {(r[0], None): float(r[1]) for r in rows}
    )
    check.source_rows += len(fetched)
    out: list[Difference] = []
    for key in sorted(fetched.keys() | stored.keys(), key=lambda k: (k[1] or "", k[0])):
        day, slice_ = key
        label = _label(dim_id, slice_)
        have, want = stored.get(key), fetched.get(key)
        if want is None:
            out.append(
                Difference(name, DiffKind.MISSING_IN_SOURCE, label, day, state=have, fix=fix)
            )
        elif have is None:
            out.append(
                Difference(name, DiffKind.MISSING_IN_STATE, label, day, source=want, fix=fix)
            )
        elif not same(have, want):
            out.append(Difference(name, DiffKind.VALUE, label, day, want, have, fix=fix))
    if dim is None:
        out += _gaps(name, ctx, fetched, stored, fix)
    return out


def _gaps(
    name: str, ctx: ContextDef, fetched: Series, stored: Series, fix: str
) -> list[Difference]:
    """Periods inside the source's own first..last answer it returned nothing for, and the
    state does not hold either (what the state holds is reported as missing in source)."""
    days = sorted(d for d, _ in fetched)
    if len(days) < 2:
        return []
    have = {d for d, _ in fetched} | {d for d, _ in stored}
    return [
        Difference(
            name,
            DiffKind.GAP,
            "base",
            day,
            detail="the source returned no row for this period inside its window "
            "(a pre-aggregation not covering it?)",
            fix=fix,
        )
        for day in iter_periods(ctx.grain, days[0], days[-1])
        if day not in have
    ]


def _against_cache(
    engine: Engine,
    sink: CacheSink,
    ctx: ContextDef,
    check: ContextCheck,
    state: dict[str | None, Series],
) -> list[Difference]:
    """The differences between the state database and the context's cache table."""
    name, grain = check.context, ctx.grain
    tenant, metric = ctx.tenant.identifier, ctx.metric.metric_id
    baseline = cache_store.read_baseline(
        engine, ctx.tenant.tenant_id, metric, grain.value, sink.target
    )
    if baseline.last_status is None:
        return []  # never loaded into this target: nothing to compare
    fix = cache_load_command(grain, tenant, metric, force=True)
    if not baseline.unchanged:
        detail = "the series changed after the last successful load"
        fix = cache_load_command(grain, tenant, metric)
        return [Difference(name, DiffKind.CACHE_STALE, "table", detail=detail, fix=fix)]
    table = sink.table_for(tenant, metric, grain)
    rows = sink.read(table)
    if rows is None:
        return [Difference(name, DiffKind.CACHE_TABLE, "table", detail=table.qualified, fix=fix)]
    check.cache_rows = len(rows)
    cached: dict[tuple[str | None, date, str | None], float] = {
        (dim, day, slice_): value for day, dim, slice_, value in rows
    }
    stored = {
        (dim, day, slice_): value
        for dim, series in state.items()
        for (day, slice_), value in series.items()
    }
    out: list[Difference] = []
    for key in sorted(stored.keys() | cached.keys(), key=_cache_order):
        dim, day, slice_ = key
        label = f"{_label(dim, slice_)} in {table.qualified}"
        have, held = stored.get(key), cached.get(key)
        if held is None:
            out.append(Difference(name, DiffKind.CACHE_MISSING, label, day, state=have, fix=fix))
        elif have is None:
            out.append(Difference(name, DiffKind.CACHE_EXTRA, label, day, cache=held, fix=fix))
        elif not same(have, held):
            out.append(
                Difference(name, DiffKind.CACHE_VALUE, label, day, state=have, cache=held, fix=fix)
            )
    return out


def _cache_order(key: tuple[Any, ...]) -> tuple[str, str, date]:
    dim, day, slice_ = key
    return (dim or "", slice_ or "", day)
