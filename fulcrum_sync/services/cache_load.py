"""The ``cache-load`` service: copy each context's stored series into its cache table."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from fulcrum_sync.catalog import ContextDef
from fulcrum_sync.config import Settings
from fulcrum_sync.domain import (
    CacheLoadResult,
    ContextCacheResult,
    DependencyError,
    Grain,
    InputError,
    Window,
    is_outage,
)
from fulcrum_sync.logs import bound_fields, log_event
from fulcrum_sync.services.runner import RunContext
from fulcrum_sync.services.selection import select_contexts
from fulcrum_sync.sinks.base import CacheSink
from fulcrum_sync.sinks.identifiers import CacheTable, check_collisions, normalize_part
from fulcrum_sync.store import cache as cache_store

log = logging.getLogger(__name__)

EMPTY_REASON = "no stored rows (run sync first); the cache table was left as it was"


def plan_tables(
    sink: CacheSink, selected: list[ContextDef], others: list[ContextDef] | None = None
) -> dict[str, CacheTable]:
    """Return ``{tenant::metric: table}`` for ``selected``; run no SQL.

    Raises InputError when a name is unsafe or two contexts (among ``selected`` and
    ``others``, the rest of the grain's active contexts) would share a table.
    """
    tables = {
        c.context.to_string(): sink.table_for(c.tenant.identifier, c.metric.metric_id, c.grain)
        for c in selected
    }
    pairs = [(ctx, tbl.name) for ctx, tbl in tables.items()]
    for c in others or []:
        name = c.context.to_string()
        if name in tables:
            continue
        try:
            other = sink.table_for(c.tenant.identifier, c.metric.metric_id, c.grain)
        except InputError:
            continue  # refused when that context itself is loaded
        pairs.append((name, other.name))
    check_collisions(pairs, only=set(tables))
    return tables


def run(
    engine: Engine,
    settings: Settings,
    sink: CacheSink,
    grain: Grain,
    tenant: str | None = None,
    metric: str | None = None,
    *,
    on_start: Callable[[int], None] | None = None,
    on_result: Callable[[ContextCacheResult], None] | None = None,
) -> CacheLoadResult:
    """Load every active context of ``grain`` (with the cache enabled) into its cache table.

    Table names are checked before anything connects; a failing context does not stop the
    others. Raises InputError (a bad filter, an unsafe or shared table name: nothing loaded),
    SinkError (the target is unreachable: nothing loaded) or StoreError.
    """
    for value, what in ((tenant, "tenant"), (metric, "metric")):
        if value is not None:
            normalize_part(value, what)
    contexts = select_contexts(engine, settings, grain, tenant, metric, discover_first=False)
    others = (
        select_contexts(engine, settings, grain, discover_first=False) if tenant or metric else []
    )
    tables = plan_tables(sink, contexts, others)
    result = CacheLoadResult(grain, sink.target, started_at=datetime.now(UTC))
    arguments = {"grain": grain.value, "tenant": tenant, "metric": metric, "target": sink.target}
    rc = RunContext.start(engine, "cache-load", arguments, lease_seconds=settings.lease_seconds)
    result.run_id = rc.run_id
    if on_start is not None:
        on_start(len(contexts))

    def summarize() -> tuple[str, dict[str, Any]]:
        result.finished_at = datetime.now(UTC)
        summary = result.summary()
        return str(summary["outcome"]), summary

    with rc.recording(summarize):
        if contexts:
            import pandas  # noqa: F401  (imported here so the first load's time excludes it)

            sink.open()
            try:
                for ctx in contexts:
                    table = tables[ctx.context.to_string()]
                    with bound_fields(**rc.fields(), grain=grain.value):
                        outcome = _load_context(engine, sink, ctx, table)
                    result.contexts.append(outcome)
                    if on_result is not None:
                        on_result(outcome)
            finally:
                sink.close()
    return result


def _load_context(
    engine: Engine, sink: CacheSink, ctx: ContextDef, table: CacheTable
) -> ContextCacheResult:
    """Read, load and record one context; never raises."""
    name = ctx.context.to_string()
    fields: dict[str, Any] = {
        "tenant": ctx.tenant.identifier,
        "metric": ctx.metric.metric_id,
        "grain": ctx.grain.value,
        "table": table.qualified,
        "target": sink.target,
    }
    res = ContextCacheResult(name, ctx.grain, table.qualified, "failed")
    res.loaded_at = datetime.now(UTC)
    started = time.perf_counter()
    try:
        frame = cache_store.read_cache_frame(
            engine, ctx.tenant.tenant_id, ctx.metric.metric_id, ctx.grain.value
        )
        if frame.empty:
            sink.ensure_table(table)
            res.status, res.skip_reason = "skipped", EMPTY_REASON
        else:
            stats = sink.replace(table, frame, ctx.grain, res.loaded_at)
            res.status, res.rows = "succeeded", stats.rows
            res.size_mb, res.size_estimated = stats.size_mb, stats.size_estimated
            res.window = Window(frame["date"].min(), frame["date"].max())
    except Exception as exc:  # isolation: one context's failure never stops the others
        res.error = str(exc) or type(exc).__name__
        res.dependency_failure = is_outage(exc)
        if not res.dependency_failure:
            log_event(log, "cache load crashed", logging.ERROR, exc_info=exc, **fields)
    res.seconds = round(time.perf_counter() - started, 4)
    try:
        cache_store.record_cache_load(engine, _record(ctx, sink.target, res))
    except DependencyError as exc:
        res.status, res.dependency_failure = "failed", True
        res.error = f"{res.error + '; ' if res.error else ''}cannot record the load: {exc}"
    log_event(
        log,
        f"cache load {res.status}",
        logging.ERROR if res.status == "failed" else logging.INFO,
        counts={"rows": res.rows},
        size_mb=res.size_mb,
        duration=round(res.seconds, 3),
        error=res.error,
        **fields,
    )
    return res


def _record(ctx: ContextDef, target: str, res: ContextCacheResult) -> cache_store.CacheLoadRecord:
    return cache_store.CacheLoadRecord(
        tenant_id=ctx.tenant.tenant_id,
        metric_id=ctx.metric.metric_id,
        grain=ctx.grain.value,
        target=target,
        table_name=res.table,
        rows_loaded=res.rows,
        size_mb=res.size_mb,
        window_start=res.window.start if res.window else None,
        window_end=res.window.end if res.window else None,
        status=res.status,
        error=res.error or res.skip_reason,
        loaded_at=res.loaded_at or datetime.now(UTC),
        duration_seconds=res.seconds,
    )
