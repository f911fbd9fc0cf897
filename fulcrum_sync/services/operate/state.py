"""``state show`` and ``state reset``: what the state database holds for a scope, and forgetting it.

A reset clears records so the tool redoes the work by itself: without a sync status row the
next sync of a series is FULL; a run key absent from ``run_items`` is claimable, so the next
run covering its period does it again without ``--force``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy import Engine

from fulcrum_sync import catalog as cat
from fulcrum_sync.domain import (
    CacheState,
    ContextState,
    InputError,
    PatternState,
    ResetRequest,
    ResetResult,
    RunKeyCount,
    Scope,
    SeriesState,
    StateReport,
)
from fulcrum_sync.services.jobs.keys import pattern_specs
from fulcrum_sync.services.jobs.runner import RunContext
from fulcrum_sync.store import state as store
from fulcrum_sync.store.catalog import read_catalog
from fulcrum_sync.store.tables import NO_DIMENSION, NO_PATTERN_DIMENSION

EVERYTHING_REFUSED = (
    "refusing to reset the whole state database: narrow the scope with --tenant, --metric, "
    "--grain, --dimension or --from/--to, or pass --all"
)


def resolve_scope(engine: Engine, scope: Scope) -> tuple[list[cat.ContextDef], int | None]:
    """Return the catalog's contexts in ``scope`` (active or not) and the tenant's numeric id.

    Raises InputError for an unknown tenant, metric or dimension (naming the known ones).
    """
    catalog = read_catalog(engine)
    tenant_id = None
    if scope.tenant is not None:
        tenant_id = cat.find_tenant(catalog, scope.tenant).tenant_id
    if scope.metric is not None:
        cat.check_metric(catalog, scope.tenant, scope.metric)
    contexts = [
        cat.ContextDef(tenant, metric, grain)
        for tenant in catalog.tenants
        if scope.tenant in (None, tenant.identifier)
        for metric in tenant.metrics
        if scope.metric in (None, metric.metric_id)
        for grain in metric.grains
        if scope.grain in (None, grain)
    ]
    if scope.dimension is not None:
        known = sorted({d.dimension_id for c in contexts for d in c.metric.dimensions})
        if scope.dimension not in known:
            raise InputError(
                f"unknown dimension {scope.dimension!r} in scope ({scope.describe()}): "
                f"known dimensions are {', '.join(known) or 'none'}"
            )
        contexts = [c for c in contexts if c.metric.dimension(scope.dimension)]
    return sorted(contexts, key=lambda c: (c.context, c.grain.value)), tenant_id


def show(engine: Engine, scope: Scope) -> StateReport:
    """Return what the state database holds for every context in ``scope``.

    Per context: each series' last sync, run keys by status over the range, pattern results
    present and periods missing one, and the last cache loads. Raises InputError or StoreError.
    """
    contexts, tenant_id = resolve_scope(engine, scope)
    s = store.StoreScope(scope, tenant_id)
    statuses = _group(store.read_sync_status(engine, s), "tenant_id")
    keys = _group(store.read_key_counts(engine, s), "tenant")
    synced = store.read_synced_periods(engine, s)
    results = _group(store.read_pattern_index(engine, s), "tenant_id")
    loads = _group(store.read_cache_loads(engine, s), "tenant_id")
    report = StateReport(scope)
    for ctx in contexts:
        by_id = (ctx.tenant.tenant_id, ctx.metric.metric_id, ctx.grain.value)
        by_name = (ctx.tenant.identifier, ctx.metric.metric_id, ctx.grain.value)
        report.contexts.append(
            ContextState(
                context=ctx.context.to_string(),
                grain=ctx.grain,
                active=ctx.tenant.active and ctx.tenant.cache_enabled and ctx.metric.active,
                series=[_series(r) for r in statuses.get(by_id, [])],
                run_keys=[_key_count(r) for r in keys.get(by_name, [])],
                patterns=_patterns(ctx, scope, results.get(by_id, []), synced.get(by_name)),
                cache=[_cache(r) for r in loads.get(by_id, [])],
            )
        )
    return report


def reset(
    engine: Engine,
    request: ResetRequest,
    *,
    everything: bool = False,
    lease_seconds: int = 120,
    confirm: Callable[[ResetResult], bool] | None = None,
) -> ResetResult:
    """Count what ``request`` clears and, unless a dry run or refused, clear it in one transaction.

    :param everything: allow an empty scope (``--all``); refused otherwise.
    :param confirm: shown the counts before anything is deleted; False leaves all as it was.
    The reset is recorded as a ``state reset`` run. Raises InputError (an empty scope without
    ``everything``, an unknown tenant, metric or dimension) or StoreError.
    """
    scope = request.scope
    if scope.empty and not everything:
        raise InputError(EVERYTHING_REFUSED)
    if everything and not scope.empty:
        raise InputError(f"--all resets everything: drop it or the scope ({scope.describe()})")
    request.check()
    _contexts, tenant_id = resolve_scope(engine, scope)
    s = store.StoreScope(scope, tenant_id)
    rows, held = store.count_parts(engine, s, request.parts)
    result = ResetResult(request, rows, held)
    if request.dry_run or not result.total:
        return result
    if confirm is not None and not confirm(result):
        return result
    rc = RunContext.start(engine, "state reset", _arguments(request), lease_seconds=lease_seconds)

    def summarize() -> tuple[str, dict[str, Any]]:
        return "succeeded", {"deleted": dict(result.deleted), "held": result.held}

    with rc.recording(summarize):
        result.deleted, result.held = store.delete_parts(engine, s, request.parts)
        result.applied = True
    result.run_id = rc.run_id
    return result


def _arguments(request: ResetRequest) -> dict[str, Any]:
    scope = request.scope
    return {
        "tenant": scope.tenant,
        "metric": scope.metric,
        "grain": scope.grain,
        "dimension": scope.dimension,
        "from": scope.start,
        "to": scope.end,
        "what": list(request.what),
    }


def _group(rows: list[dict[str, Any]], tenant_key: str) -> dict[tuple[Any, str, str], list[Any]]:
    out: dict[tuple[Any, str, str], list[Any]] = {}
    for row in rows:
        out.setdefault((row[tenant_key], row["metric_id"], row["grain"]), []).append(row)
    return out


def _series(row: dict[str, Any]) -> SeriesState:
    return SeriesState(
        dimension=None if row["dimension"] == NO_DIMENSION else row["dimension"],
        status=row["status"],
        sync_type=row["sync_type"],
        period=row["period"],
        window_start=row["window_start"],
        window_end=row["window_end"],
        rows_fetched=row["rows_fetched"],
        rows_stored=row["rows_stored"],
        rows_skipped=row["rows_skipped"],
        last_attempt_at=row["last_attempt_at"],
        last_success_at=row["last_success_at"],
        failing_since=row["failing_since"],
        error=row["error"],
    )


def _key_count(row: dict[str, Any]) -> RunKeyCount:
    return RunKeyCount(
        row["kind"],
        row["status"],
        row["count"],
        store.as_date(row["first_period"]),
        store.as_date(row["last_period"]),
    )


def _patterns(
    ctx: cat.ContextDef,
    scope: Scope,
    results: list[dict[str, Any]],
    synced: set[date] | None,
) -> list[PatternState]:
    """Stored results per enabled pattern (and dimension), and synced periods without one."""
    states: dict[tuple[str, str | None], PatternState] = {}
    for spec in pattern_specs(ctx):
        dims = [d.dimension_id for d in ctx.metric.dimensions] if spec.needs_dimension else [None]
        for dim in dims:
            if scope.dimension in (None, dim):
                states[(spec.name, dim)] = PatternState(spec.name, dim)
    expected = set(states)
    periods: dict[tuple[str, str | None], set[date]] = {}
    for row in results:
        dim = None if row["dimension"] == NO_PATTERN_DIMENSION else row["dimension"]
        state = states.setdefault((row["pattern"], dim), PatternState(row["pattern"], dim))
        state.present[row["status"]] = state.present.get(row["status"], 0) + 1
        period = store.as_date(row["analysis_period"])
        periods.setdefault((row["pattern"], dim), set()).add(period)
        if state.latest_period is None or period > state.latest_period:
            state.latest_period = period
    for key in expected:
        states[key].missing = sorted((synced or set()) - periods.get(key, set()))
    return [states[k] for k in sorted(states, key=lambda k: (k[0], k[1] or ""))]


def _cache(row: dict[str, Any]) -> CacheState:
    return CacheState(
        target=row["target"],
        table=row["table_name"],
        status=row["status"],
        rows=row["rows_loaded"],
        loaded_at=row["loaded_at"],
        window_start=row["window_start"],
        window_end=row["window_end"],
        error=row["error"],
    )
