"""Load catalogs, discover active contexts, and select the contexts a command works on."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import Engine

from fulcrum_sync import catalog as cat
from fulcrum_sync.domain import Grain, InputError, iter_periods, parse_period, shift_period
from fulcrum_sync.sources.base import Source
from fulcrum_sync.store import catalog as catalog_store
from fulcrum_sync.store import contexts as contexts_store
from fulcrum_sync.store.catalog import CatalogSaveResult

TARGET_HORIZON_YEARS = 2  # constant targets are expanded this far past today


@dataclass(slots=True)
class DiscoverResult:
    """What discovery found: context changes, and what the source check reported."""

    grain: Grain | None
    demo_catalog_loaded: bool
    active_contexts: int
    active_pattern_contexts: int
    changes: contexts_store.ContextChanges
    tenants: list[str] = field(default_factory=list)  # taking part
    tenants_excluded: list[str] = field(default_factory=list)  # inactive or cache disabled
    broken_metrics: dict[str, list[str]] = field(default_factory=dict)
    checked_source: bool = False


def load_catalog_file(engine: Engine, path: Path, history_start: date) -> CatalogSaveResult:
    """Validate the catalog YAML at ``path`` and make it the stored catalog.

    Raises InputError (bad YAML or a missing field, nothing written) or StoreError.
    """
    return save_catalog(engine, cat.read_catalog(path), history_start)


def save_catalog(engine: Engine, catalog: cat.Catalog, history_start: date) -> CatalogSaveResult:
    """Store ``catalog`` and its targets expanded to one row per period.

    Raises InputError, before writing anything, for an unknown pattern or bad pattern settings.
    """
    check_patterns(catalog)
    result = catalog_store.save_catalog(engine, catalog, expand_targets(catalog, history_start))
    assert result is not None  # None only with only_if_empty
    return result


def check_patterns(catalog: cat.Catalog) -> None:
    """Refuse unknown pattern names and invalid per-tenant pattern settings."""
    from fulcrum_sync.patterns.registry import get_pattern, validate_pattern_settings

    for tenant in catalog.tenants:
        try:
            validate_pattern_settings(tenant.pattern_settings)
            for metric in tenant.metrics:
                for name in metric.patterns:
                    get_pattern(name)
        except InputError as exc:
            raise InputError(f"invalid catalog: tenant {tenant.identifier}: {exc}") from None


def expand_targets(
    catalog: cat.Catalog, history_start: date, today: date | None = None
) -> list[tuple[int, str, str, date, float]]:
    """Expand each metric's targets: a constant to every period, a mapping to its periods."""
    today = today or datetime.now(UTC).date()
    horizon = today.replace(month=12, day=31, year=today.year + TARGET_HORIZON_YEARS - 1)
    rows: list[tuple[int, str, str, date, float]] = []
    for tenant in catalog.tenants:
        for metric in tenant.metrics:
            for grain, spec in metric.targets.items():
                if isinstance(spec, dict):
                    periods = {parse_period(grain, key): float(v) for key, v in spec.items()}
                else:
                    first = shift_period(grain, history_start, 0)
                    periods = {p: float(spec) for p in iter_periods(grain, first, horizon)}
                rows.extend(
                    (tenant.tenant_id, metric.metric_id, grain.value, p, v)
                    for p, v in sorted(periods.items())
                )
    return rows


def ensure_catalog(engine: Engine, source_name: str, history_start: date) -> bool:
    """Load the demo catalog when none is stored and the source is the demo; return if it did."""
    if source_name != "demo" or not catalog_store.catalog_is_empty(engine):
        return False
    demo = cat.demo_catalog()
    targets = expand_targets(demo, history_start)
    return catalog_store.save_catalog(engine, demo, targets, only_if_empty=True) is not None


def discover(
    engine: Engine,
    source_name: str,
    history_start: date,
    grain: Grain | None = None,
    check_source: Source | None = None,
) -> DiscoverResult:
    """Store the catalog's active contexts (of ``grain``, or all) and report the changes.

    With ``check_source``, also ask the source's metadata whether every member exists.
    """
    loaded = ensure_catalog(engine, source_name, history_start)
    catalog = catalog_store.read_catalog(engine)
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


def select_contexts(
    engine: Engine,
    grain: Grain,
    tenant: str | None = None,
    metric: str | None = None,
) -> list[cat.ContextDef]:
    """Return the stored active contexts of ``grain``, filtered by tenant and metric.

    Raises InputError for an unknown tenant (listing the known ones) or metric.
    """
    catalog = catalog_store.read_catalog(engine)
    if tenant is not None:
        cat.find_tenant(catalog, tenant)
    if metric is not None:
        cat.check_metric(catalog, tenant, metric)
    stored = contexts_store.active_context_keys(engine, grain)
    return [
        ctx
        for ctx in cat.active_contexts(catalog, grain)
        if (ctx.tenant.tenant_id, ctx.metric.metric_id, grain.value, "") in stored
        and (tenant is None or ctx.tenant.identifier == tenant)
        and (metric is None or ctx.metric.metric_id == metric)
    ]


def preview_contexts(
    engine: Engine,
    source_name: str,
    grain: Grain,
    tenant: str | None = None,
    metric: str | None = None,
) -> list[cat.ContextDef]:
    """Return the contexts a command would work on, writing nothing (``--dry-run``).

    On a database where nothing was discovered yet, derive them from the stored catalog (or,
    with the demo source and no catalog, from the demo catalog) as discovery would.
    """
    if contexts_store.active_context_keys(engine, grain):
        return select_contexts(engine, grain, tenant, metric)
    catalog = catalog_store.read_catalog(engine)
    if not catalog.tenants and source_name == "demo":
        catalog = cat.demo_catalog()
    if tenant is not None:
        cat.find_tenant(catalog, tenant)
    if metric is not None:
        cat.check_metric(catalog, tenant, metric)
    return [
        c
        for c in cat.active_contexts(catalog, grain)
        if tenant in (None, c.tenant.identifier) and metric in (None, c.metric.metric_id)
    ]
