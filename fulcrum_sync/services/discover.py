"""Discover the active contexts of the catalog and check the source can serve them."""

from __future__ import annotations

import logging
from datetime import date, datetime

from sqlalchemy import Engine

from fulcrum_sync import catalog as cat
from fulcrum_sync.domain import (
    DiscoverResult,
    Grain,
    NotIsolated,
    Window,
    last_complete_period,
    period_end,
    shift_period,
)
from fulcrum_sync.logs import log_event
from fulcrum_sync.services.catalog import ensure_catalog, require_catalog
from fulcrum_sync.sources.base import FetchRequest, Source
from fulcrum_sync.store import catalog as catalog_store
from fulcrum_sync.store import contexts as contexts_store

log = logging.getLogger(__name__)

PROBE_PERIODS = 7  # the isolation probe asks for the last 7 complete periods
_FINEST_FIRST = list(Grain)  # the enum is ordered finest first


def discover(
    engine: Engine,
    source_name: str,
    history_start: date,
    grain: Grain | None = None,
    check_source: Source | None = None,
) -> DiscoverResult:
    """Store the catalog's active contexts (of ``grain``, or all) and report the changes.

    With ``check_source``, also ask the source's metadata whether every member exists, and
    probe whether the source keeps tenants apart (:func:`check_isolation`). Raises
    InputError on an empty catalog with a non-demo source.
    """
    loaded = ensure_catalog(engine, source_name, history_start)
    catalog = catalog_store.read_catalog(engine)
    require_catalog(catalog, source_name)  # before deactivating every stored context
    desired: dict[contexts_store.ContextKey, str] = {}
    defs = cat.active_contexts(catalog, grain)
    for ctx in defs:
        base = (ctx.tenant.tenant_id, ctx.metric.metric_id, ctx.grain.value)
        desired[(*base, "")] = ctx.tenant.identifier
        for pattern in ctx.metric.patterns:
            desired[(*base, pattern)] = ctx.tenant.identifier
    changes = contexts_store.save_contexts(engine, desired, grain)
    result = DiscoverResult(
        grain=grain,
        demo_catalog_loaded=loaded,
        active_contexts=len(defs),
        active_pattern_contexts=len(desired) - len(defs),
        changes=changes,
        tenants=[t.identifier for t in catalog.tenants if t.active and t.cache_enabled],
        tenants_excluded=[
            t.identifier for t in catalog.tenants if not (t.active and t.cache_enabled)
        ],
    )
    if check_source is not None:
        result.broken_metrics = check_members(check_source, defs)
        healthy = [d for d in defs if d.context.to_string() not in result.broken_metrics]
        result.isolation_probed, result.not_isolated = check_isolation(check_source, healthy)
        result.checked_source = True
    return result


def check_members(source: Source, defs: list[cat.ContextDef]) -> dict[str, list[str]]:
    """Return ``{tenant::metric: [missing members]}`` for metrics the source cannot serve."""
    broken: dict[str, list[str]] = {}
    by_tenant: dict[str, list[cat.ContextDef]] = {}
    for ctx in defs:
        by_tenant.setdefault(ctx.tenant.identifier, []).append(ctx)
    for tenant, items in by_tenant.items():
        meta = source.fetch_metadata(tenant)
        for ctx in items:
            m = ctx.metric
            missing = [] if m.measure in meta.measures else [m.measure]
            members = [m.time_dimension, *(d.member for d in m.dimensions)]
            missing += [x for x in members if x not in meta.dimensions]
            known = meta.dimensions | meta.measures  # a tenant's filters may name either
            missing += [f.member for f in ctx.tenant.filters if f.member not in known]
            if missing:
                broken[ctx.context.to_string()] = sorted(set(missing))
    return broken


def check_isolation(
    source: Source, defs: list[cat.ContextDef], now: datetime | None = None
) -> tuple[list[str], list[NotIsolated]]:
    """Ask each tenant of every metric shared by two or more tenants for its last periods.

    One small query per tenant (base series, the finest grain the tenants use, the last
    ``PROBE_PERIODS`` complete periods). Tenants that get identical, non-empty answers are not
    kept apart by the source; each such group is logged at error. Returns the metrics probed
    and the groups found. Raises SourceError (SourceDownError) when a probe query fails.
    """
    by_metric: dict[str, dict[str, cat.ContextDef]] = {}
    for ctx in defs:
        tenants = by_metric.setdefault(ctx.metric.metric_id, {})
        known = tenants.get(ctx.tenant.identifier)
        if known is None or _FINEST_FIRST.index(ctx.grain) < _FINEST_FIRST.index(known.grain):
            tenants[ctx.tenant.identifier] = ctx
    probed: list[str] = []
    found: list[NotIsolated] = []
    for metric_id, tenants in sorted(by_metric.items()):
        if len(tenants) < 2:
            continue
        grain = min((c.grain for c in tenants.values()), key=_FINEST_FIRST.index)
        last = last_complete_period(grain, now)
        window = Window(shift_period(grain, last, 1 - PROBE_PERIODS), period_end(grain, last))
        answers: dict[tuple[tuple[date, float], ...], list[str]] = {}
        for identifier, ctx in sorted(tenants.items()):
            request = FetchRequest(
                ctx.tenant.tenant_id,
                identifier,
                ctx.metric,
                grain,
                window,
                filters=ctx.tenant.filters,
            )
            rows = source.fetch_series(request)
            answer = tuple(sorted((r.date, r.value) for r in rows if r.value is not None))
            if answer:
                answers.setdefault(answer, []).append(identifier)
        probed.append(metric_id)
        for answer, same in answers.items():
            if len(same) > 1:
                group = NotIsolated(metric_id, same, grain, window, len(answer))
                found.append(group)
                log_event(
                    log,
                    "tenants not isolated",
                    logging.ERROR,
                    metric=metric_id,
                    grain=grain.value,
                    error=group.message(),
                )
    return probed, found
