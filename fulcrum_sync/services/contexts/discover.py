"""Discover the active contexts of the catalog and check the source can serve them."""

from __future__ import annotations

import logging
from datetime import date, datetime

from sqlalchemy import Engine

from fulcrum_sync import catalog as cat
from fulcrum_sync.domain import (
    DiscoverResult,
    FulcrumError,
    Grain,
    IsolationUnknown,
    NotIsolated,
    SyncType,
    compute_window,
    last_complete_period,
)
from fulcrum_sync.logs import log_event
from fulcrum_sync.services.contexts.catalog import ensure_catalog, require_catalog
from fulcrum_sync.sources.base import FetchRequest, Source
from fulcrum_sync.store import catalog as catalog_store
from fulcrum_sync.store import contexts as contexts_store

log = logging.getLogger(__name__)

_FINEST_FIRST = list(Grain)  # the enum is ordered finest first


def discover(
    engine: Engine,
    source_name: str,
    history_start: date,
    grain: Grain | None = None,
    check_source: Source | None = None,
    now: datetime | None = None,
) -> DiscoverResult:
    """Store the catalog's active contexts (of ``grain``, or all) and report the changes.

    With ``check_source``, also ask the source's metadata whether every member exists, and
    probe whether the source keeps tenants apart (:func:`check_isolation`) for the period a
    sync at ``now`` would target (``Settings.now()``: FULCRUM_SYNC_TODAY moves it). Raises
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
        probe = check_isolation(check_source, healthy, now, history_start)
        result.isolation_probed, result.not_isolated, result.isolation_unknown = probe
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


def _endpoint_of(source: Source, tenant: str) -> str:
    """The endpoint ``tenant``'s requests go to ("" for a single-endpoint source)."""
    route = getattr(source, "source_for", None)  # tenants' own Cubes (routing source)
    if route is None:
        return ""
    try:
        return str(route(tenant).endpoint)
    except FulcrumError:
        return f"unusable:{tenant}"  # its own probe fails alone, naming the fix


def check_isolation(
    source: Source,
    defs: list[cat.ContextDef],
    now: datetime | None = None,
    history_start: date | None = None,
) -> tuple[list[str], list[NotIsolated], list[IsolationUnknown]]:
    """Ask each tenant of every metric shared by two or more tenants for the window a first
    sync of the last complete period (at ``now``) would fetch.

    One query per tenant (base series, the finest grain the tenants use, the FULL window
    of that period, not before ``history_start``). Tenants that get identical, non-empty
    answers are not kept apart by the source; tenants whose answer is empty prove nothing
    (an unscoped Cube whose data lies elsewhere answers empty too): both are logged at
    error. Returns the metrics probed, the groups not isolated and the tenants that could
    not be told apart. Raises SourceError (SourceDownError) when a probe query fails.

    Tenants on different Cube endpoints (their own ``cube:`` blocks) are compared only with
    the tenants of their own endpoint: the probe runs per endpoint.
    """
    by_metric: dict[tuple[str, str], dict[str, cat.ContextDef]] = {}
    for ctx in defs:
        key = (ctx.metric.metric_id, _endpoint_of(source, ctx.tenant.identifier))
        tenants = by_metric.setdefault(key, {})
        known = tenants.get(ctx.tenant.identifier)
        if known is None or _FINEST_FIRST.index(ctx.grain) < _FINEST_FIRST.index(known.grain):
            tenants[ctx.tenant.identifier] = ctx
    probed: list[str] = []
    found: list[NotIsolated] = []
    unknown: list[IsolationUnknown] = []
    for (metric_id, _endpoint), tenants in sorted(by_metric.items()):
        if len(tenants) < 2:
            continue
        grain = min((c.grain for c in tenants.values()), key=_FINEST_FIRST.index)
        last = last_complete_period(grain, now)
        window = compute_window(grain, last, SyncType.FULL, history_start or date.min)
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
            answers.setdefault(answer, []).append(identifier)
        if metric_id not in probed:
            probed.append(metric_id)
        empty = answers.pop((), [])
        if empty:
            group_unknown = IsolationUnknown(metric_id, empty, grain, window)
            unknown.append(group_unknown)
            _log_probe(metric_id, grain, group_unknown.message())
        for answer, same in answers.items():
            if len(same) > 1:
                group = NotIsolated(metric_id, same, grain, window, len(answer))
                found.append(group)
                _log_probe(metric_id, grain, group.message())
    return probed, found, unknown


def _log_probe(metric_id: str, grain: Grain, message: str) -> None:
    log_event(
        log,
        "tenants not isolated",
        logging.ERROR,
        metric=metric_id,
        grain=grain.value,
        error=message,
    )
