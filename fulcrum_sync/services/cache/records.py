"""What a cache load compares and records: whether a context changed since its last load
into a target (its data version), and each load's record and log line."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from fulcrum_sync.catalog import ContextDef
from fulcrum_sync.domain import ContextCacheResult, DependencyError
from fulcrum_sync.logs import log_event
from fulcrum_sync.store import cache as cache_store

log = logging.getLogger(__name__)


def ids(ctx: ContextDef) -> tuple[int, str, str]:
    """The context's key in the state database: tenant id, metric, grain."""
    return (ctx.tenant.tenant_id, ctx.metric.metric_id, ctx.grain.value)


def unchanged(
    engine: Engine,
    ctx: ContextDef,
    target: str,
    res: ContextCacheResult,
    fields: dict[str, Any],
    force: bool,
) -> bool:
    """Fill ``res`` as ``unchanged`` and return True when the context's series did not
    change since its last successful load into ``target`` (never when ``force``).

    Reads the data version before the rows: a write in between raises the version, so the
    next load sees a change and loads again (never the other way round).
    """
    started = time.perf_counter()
    baseline = cache_store.read_baseline(engine, *ids(ctx), target)
    return settled_unchanged(res, baseline, fields, force, started)


def settled_unchanged(
    res: ContextCacheResult,
    baseline: cache_store.LoadBaseline,
    fields: dict[str, Any],
    force: bool,
    started: float,
) -> bool:
    """Take the context's data version from ``baseline``; when nothing changed since its
    last successful load (and not ``force``), fill ``res`` as ``unchanged``, log it and
    return True."""
    res.data_version = baseline.version
    if not baseline.unchanged or force:
        return False
    res.status, res.seconds = "unchanged", round(time.perf_counter() - started, 4)
    loaded = f"{baseline.last_loaded_at:%Y-%m-%d %H:%M:%S} UTC"
    res.skip_reason = f"unchanged since its load of {loaded} (data version {baseline.version})"
    log_event(log, "cache load unchanged", data_version=res.data_version, **fields)
    return True


def record(
    engine: Engine, ctx: ContextDef, target: str, res: ContextCacheResult, fields: dict[str, Any]
) -> None:
    """Store ``res`` as the context's latest load and log it (a failure at ``error``)."""
    try:
        cache_store.record_cache_load(engine, _record(ctx, target, res))
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


def context_fields(ctx: ContextDef, table: str, target: str) -> dict[str, Any]:
    """The log fields of one context's load."""
    return {
        "tenant": ctx.tenant.identifier,
        "metric": ctx.metric.metric_id,
        "grain": ctx.grain.value,
        "table": table,
        "target": target,
    }


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
        data_version=res.data_version,
    )
