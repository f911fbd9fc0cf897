"""Read-only queries behind ``status`` and ``runs``."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, and_, desc, func, select

from fulcrum_sync.domain import RunsQuery
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import reconnecting, translate_errors


@reconnecting
def recent_runs(engine: Engine, query: RunsQuery | None = None) -> list[dict[str, Any]]:
    """Return the latest invocations that match ``query``, newest first."""
    query = query or RunsQuery()
    c = t.runs.c
    sql = select(t.runs).order_by(desc(c.started_at)).limit(query.limit)
    if query.command:
        sql = sql.where(c.command == query.command)
    if query.outcome:
        sql = sql.where(c.outcome == query.outcome)
    if query.since is not None:
        sql = sql.where(c.started_at >= query.since)
    if query.grain is not None:
        sql = sql.where(c.arguments["grain"].as_string() == query.grain.value)
    with translate_errors(engine, "read runs from"), engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sql)]


@reconnecting
def run_commands(engine: Engine) -> list[str]:
    """Return the commands that have a run recorded (what ``runs --command`` can match)."""
    query = select(t.runs.c.command).distinct().order_by(t.runs.c.command)
    with translate_errors(engine, "read runs from"), engine.connect() as conn:
        return [r[0] for r in conn.execute(query)]


@reconnecting
def find_runs(engine: Engine, prefix: str, limit: int = 5) -> list[dict[str, Any]]:
    """Return up to ``limit`` invocations whose run id starts with ``prefix``."""
    c = t.runs.c
    query = (
        select(t.runs)
        .where(c.run_id.startswith(prefix, autoescape=True))
        .order_by(desc(c.started_at))
        .limit(limit)
    )
    with translate_errors(engine, "read runs from"), engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


@reconnecting
def run_keys_of(engine: Engine, run_id: str) -> list[dict[str, Any]]:
    """Return the run keys last worked by ``run_id``, in the order they started."""
    c = t.run_items.c
    query = select(t.run_items).where(c.run_id == run_id).order_by(c.started_at, c.run_key)
    with translate_errors(engine, "read run keys from"), engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


@reconnecting
def failing_series(engine: Engine, grain: str | None = None) -> list[dict[str, Any]]:
    """Return series whose last sync failed, with since when and the last error."""
    c = t.metric_sync_status.c
    query = (
        select(
            t.tenants.c.identifier.label("tenant"),
            c.metric_id,
            c.grain,
            c.dimension,
            c.period,
            c.failing_since,
            c.last_attempt_at,
            c.last_success_at,
            c.error,
        )
        .join(t.tenants, t.tenants.c.tenant_id == c.tenant_id)
        .where(c.status == "failed")
        .order_by(c.failing_since)
    )
    if grain:
        query = query.where(c.grain == grain)
    with translate_errors(engine, "read sync status from"), engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


@reconnecting
def failing_patterns(engine: Engine, grain: str | None = None) -> list[dict[str, Any]]:
    """Return the latest failed pattern result per (context, pattern, dimension, grain)."""
    p = t.pattern_results.c
    latest = (
        select(
            p.tenant_id,
            p.metric_id,
            p.pattern,
            p.grain,
            p.dimension,
            func.max(p.analysis_period).label("period"),
        )
        .group_by(p.tenant_id, p.metric_id, p.pattern, p.grain, p.dimension)
        .subquery()
    )
    query = (
        select(
            t.tenants.c.identifier.label("tenant"),
            p.metric_id,
            p.pattern,
            p.grain,
            p.dimension,
            p.analysis_period,
            p.run_at,
            p.error,
        )
        .join(t.tenants, t.tenants.c.tenant_id == p.tenant_id)
        .join(
            latest,
            and_(
                latest.c.tenant_id == p.tenant_id,
                latest.c.metric_id == p.metric_id,
                latest.c.pattern == p.pattern,
                latest.c.grain == p.grain,
                latest.c.dimension == p.dimension,
                latest.c.period == p.analysis_period,
            ),
        )
        .where(p.status == "failed")
        .order_by(p.run_at)
    )
    if grain:
        query = query.where(p.grain == grain)
    with translate_errors(engine, "read pattern results from"), engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


@reconnecting
def latest_pattern_periods(engine: Engine) -> dict[tuple[int, str, str], date]:
    """Return the latest analysed period per (tenant_id, metric_id, grain)."""
    p = t.pattern_results.c
    query = select(p.tenant_id, p.metric_id, p.grain, func.max(p.analysis_period)).group_by(
        p.tenant_id, p.metric_id, p.grain
    )
    with translate_errors(engine, "read pattern results from"), engine.connect() as conn:
        return {(r[0], r[1], r[2]): _as_date(r[3]) for r in conn.execute(query)}


@reconnecting
def active_contexts(engine: Engine) -> list[dict[str, Any]]:
    """Return the active metric contexts (no pattern contexts)."""
    c = t.contexts.c
    query = select(c.tenant_id, c.tenant, c.metric_id, c.grain).where(
        and_(c.active.is_(True), c.pattern == "")
    )
    with translate_errors(engine, "read contexts from"), engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


@reconnecting
def item_counts(engine: Engine, run_keys_of: str | None = None) -> dict[str, int]:
    """Return how many run items are in each status (optionally of one backfill)."""
    c = t.run_items.c
    query = select(c.status, func.count()).group_by(c.status)
    if run_keys_of:
        b = t.backfill_items.c
        query = query.join(t.backfill_items, b.run_key == c.run_key).where(
            b.backfill_id == run_keys_of
        )
    with translate_errors(engine, "read run items from"), engine.connect() as conn:
        return {r[0]: r[1] for r in conn.execute(query)}


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    return value  # type: ignore[no-any-return]
