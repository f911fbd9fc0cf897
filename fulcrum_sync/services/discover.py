"""Discover the active contexts of the catalog and check the source can serve them."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine

from fulcrum_sync import catalog as cat
from fulcrum_sync.domain import DiscoverResult, Grain
from fulcrum_sync.services.catalog import ensure_catalog, require_catalog
from fulcrum_sync.sources.base import Source
from fulcrum_sync.store import catalog as catalog_store
from fulcrum_sync.store import contexts as contexts_store


def discover(
    engine: Engine,
    source_name: str,
    history_start: date,
    grain: Grain | None = None,
    check_source: Source | None = None,
) -> DiscoverResult:
    """Store the catalog's active contexts (of ``grain``, or all) and report the changes.

    With ``check_source``, also ask the source's metadata whether every member exists.
    Raises InputError on an empty catalog with a non-demo source.
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
            if missing:
                broken[ctx.context.to_string()] = sorted(set(missing))
    return broken
