"""Pick the contexts a command works on: one function for sync, patterns, cache-load, backfill."""

from __future__ import annotations

from sqlalchemy import Engine

from fulcrum_sync import catalog as cat
from fulcrum_sync.config import Settings
from fulcrum_sync.domain import Grain, InputError
from fulcrum_sync.services.contexts.catalog import require_catalog
from fulcrum_sync.sources.registry import source_entry
from fulcrum_sync.store import catalog as catalog_store
from fulcrum_sync.store import contexts as contexts_store

MAX_REASONS = 5  # a filter's "why nothing" line lists this many contexts, then a count


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
    nothing: the contexts are derived from the catalog as discovery would. Raises InputError
    for an unknown tenant (listing the known ones) or metric, for a ``tenant``/``metric``
    filter that selects nothing (saying why), and for an empty catalog with a non-demo source.
    """
    if discover_first and not contexts_store.active_context_keys(engine, grain):
        # The preview refuses bad filters before discovery writes anything.
        preview = _preview(engine, settings.source, grain, tenant, metric)
        if dry_run:
            return preview
        from fulcrum_sync.services.contexts.discover import discover  # once per database

        discover(engine, settings.source, settings.history_start, grain)
    return _stored(engine, settings.source, grain, tenant, metric)


def _filter(
    catalog: cat.Catalog,
    grain: Grain,
    tenant: str | None,
    metric: str | None,
    stored: set[contexts_store.ContextKey] | None = None,
) -> list[cat.ContextDef]:
    """The active contexts matching the filters (and ``stored``, the discovered keys)."""
    if tenant is not None:
        cat.find_tenant(catalog, tenant)
    if metric is not None:
        cat.check_metric(catalog, tenant, metric)
    picked = sorted(
        (
            c
            for c in cat.active_contexts(catalog, grain)
            if tenant in (None, c.tenant.identifier)
            and metric in (None, c.metric.metric_id)
            and (
                stored is None
                or (c.tenant.tenant_id, c.metric.metric_id, grain.value, "") in stored
            )
        ),
        key=lambda c: c.context,
    )
    if not picked and (tenant is not None or metric is not None):
        raise InputError(nothing_selected(catalog, grain, tenant, metric, stored))
    return picked


def nothing_selected(
    catalog: cat.Catalog,
    grain: Grain,
    tenant: str | None,
    metric: str | None,
    stored: set[contexts_store.ContextKey] | None = None,
) -> str:
    """Say in one line why the ``tenant``/``metric`` filters select no active context."""
    reasons = []
    for t in catalog.tenants:
        metrics = [m for m in t.metrics if metric in (None, m.metric_id)]
        if tenant not in (None, t.identifier) or (metric is not None and not metrics):
            continue
        if not t.active:
            reasons.append(f"tenant {t.identifier} is inactive")
        elif not t.cache_enabled:
            reasons.append(f"tenant {t.identifier} has the cache disabled (cache_enabled: false)")
        elif not metrics:
            reasons.append(f"tenant {t.identifier} has no metrics")
        for m in metrics if t.active and t.cache_enabled else ():
            name = f"{t.identifier}::{m.metric_id}"
            if not m.active:
                reasons.append(f"{name} is inactive")
            elif grain not in m.grains:
                enabled = ", ".join(g.value for g in m.grains)
                reasons.append(f"{name} does not enable grain {grain.value} (only {enabled})")
            elif stored is not None and (t.tenant_id, m.metric_id, grain.value, "") not in stored:
                reasons.append(f"{name} is not discovered yet (run `fulcrum-sync discover`)")
    shown = "; ".join(reasons[:MAX_REASONS])
    if len(reasons) > MAX_REASONS:
        shown += f" (and {len(reasons) - MAX_REASONS} more)"
    given = " ".join(
        f"--{name} {value}" for name, value in (("tenant", tenant), ("metric", metric)) if value
    )
    return f"{given} selects no active {grain.value} context: {shown or 'none matches'}"


def _stored(
    engine: Engine, source_name: str, grain: Grain, tenant: str | None, metric: str | None
) -> list[cat.ContextDef]:
    """The discovered active contexts, filtered by tenant and metric."""
    catalog = catalog_store.read_catalog(engine)
    require_catalog(catalog, source_name)
    stored = contexts_store.active_context_keys(engine, grain)
    return _filter(catalog, grain, tenant, metric, stored)


def _preview(
    engine: Engine, source_name: str, grain: Grain, tenant: str | None, metric: str | None
) -> list[cat.ContextDef]:
    """The contexts discovery would store, from the stored (or demo) catalog; writes nothing."""
    catalog = catalog_store.read_catalog(engine)
    if not catalog.tenants and source_entry(source_name).self_contained:
        catalog = cat.demo_catalog()
    require_catalog(catalog, source_name)
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
