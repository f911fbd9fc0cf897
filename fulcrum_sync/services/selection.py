"""Pick the contexts a command works on: one function for sync, patterns, cache-load, backfill."""

from __future__ import annotations

from sqlalchemy import Engine

from fulcrum_sync import catalog as cat
from fulcrum_sync.config import Settings
from fulcrum_sync.domain import Grain
from fulcrum_sync.services.discover import discover
from fulcrum_sync.store import catalog as catalog_store
from fulcrum_sync.store import contexts as contexts_store


def select_contexts(
    engine: Engine,
    settings: Settings,
    grain: Grain,
    tenant: str | None = None,
    metric: str | None = None,
    *,
    dry_run: bool = False,
    discover_first: bool = True,
) -> list[cat.ContextDef]:
    """Return the active contexts of ``grain`` a command works on, sorted by context.

    On a database where nothing of ``grain`` was discovered yet, discover first (with the
    demo source and no catalog, the demo catalog is loaded) unless ``discover_first`` is
    False (commands that work on stored data: patterns, cache-load). ``dry_run`` writes
    nothing: the contexts are derived from the catalog as discovery would. Raises InputError for an
    unknown tenant (listing the known ones) or metric.
    """
    if discover_first and not contexts_store.active_context_keys(engine, grain):
        if dry_run:
            return _preview(engine, settings.source, grain, tenant, metric)
        discover(engine, settings.source, settings.history_start, grain)
    return _stored(engine, grain, tenant, metric)


def _filter(
    catalog: cat.Catalog, grain: Grain, tenant: str | None, metric: str | None
) -> list[cat.ContextDef]:
    if tenant is not None:
        cat.find_tenant(catalog, tenant)
    if metric is not None:
        cat.check_metric(catalog, tenant, metric)
    return sorted(
        (
            c
            for c in cat.active_contexts(catalog, grain)
            if tenant in (None, c.tenant.identifier) and metric in (None, c.metric.metric_id)
        ),
        key=lambda c: c.context,
    )


def _stored(
    engine: Engine, grain: Grain, tenant: str | None, metric: str | None
) -> list[cat.ContextDef]:
    """The discovered active contexts, filtered by tenant and metric."""
    stored = contexts_store.active_context_keys(engine, grain)
    return [
        c
        for c in _filter(catalog_store.read_catalog(engine), grain, tenant, metric)
        if (c.tenant.tenant_id, c.metric.metric_id, grain.value, "") in stored
    ]


def _preview(
    engine: Engine, source_name: str, grain: Grain, tenant: str | None, metric: str | None
) -> list[cat.ContextDef]:
    """The contexts discovery would store, from the stored (or demo) catalog; writes nothing."""
    catalog = catalog_store.read_catalog(engine)
    if not catalog.tenants and source_name == "demo":
        catalog = cat.demo_catalog()
    return _filter(catalog, grain, tenant, metric)


def resolve_context(
    engine: Engine, context: str, dimension: str | None = None
) -> tuple[cat.TenantDef, cat.MetricDef]:
    """Return the stored catalog's tenant and metric of ``tenant::metric``.

    Raises InputError for a malformed context, an unknown tenant or metric, or a dimension the
    metric does not have (naming the known ones).
    """
    from fulcrum_sync.domain import InputError, MetricContext

    mctx = MetricContext.from_string(context)
    tenant = cat.find_tenant(catalog_store.read_catalog(engine), mctx.tenant)
    metric = next((m for m in tenant.metrics if m.metric_id == mctx.metric), None)
    if metric is None:
        known = ", ".join(m.metric_id for m in tenant.metrics) or "none"
        raise InputError(
            f"unknown metric {mctx.metric!r} for tenant {mctx.tenant}: known metrics are {known}"
        )
    if dimension is not None and metric.dimension(dimension) is None:
        known = ", ".join(d.dimension_id for d in metric.dimensions) or "none"
        raise InputError(
            f"unknown dimension {dimension!r} for {context}: known dimensions are {known}"
        )
    return tenant, metric
