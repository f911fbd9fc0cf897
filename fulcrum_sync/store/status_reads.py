"""Read-only queries ``status`` needs beyond ``store/reports.py``: whether there is anything
to watch, the keys and results of recent context-periods (holes) and abandoned runs."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Engine, desc, func, inspect, select

from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import reconnecting, translate_errors
from fulcrum_sync.store.state import as_date

PatternResultKey = tuple[int, str, str, date, str]  # tenant_id, metric, pattern, period, dim


def has_schema(engine: Engine) -> bool:
    """True when the state tables exist (reads the catalog of the database, creates nothing)."""
    with translate_errors(engine, "inspect"), engine.connect() as conn:
        return bool(inspect(conn).has_table(t.runs.name))


@reconnecting
def counts_to_watch(engine: Engine) -> dict[str, int]:
    """How many tenants, active contexts and runs the database holds."""
    queries = {
        "tenants": select(func.count()).select_from(t.tenants),
        "contexts": select(func.count()).select_from(t.contexts),
        "runs": select(func.count()).select_from(t.runs),
    }
    with translate_errors(engine, "count rows of"), engine.connect() as conn:
        return {name: int(conn.execute(q).scalar_one()) for name, q in queries.items()}


@reconnecting
def synced_periods(engine: Engine, grain: str, start: date) -> list[tuple[str, str, date]]:
    """(tenant, metric, period) of every sync key of ``grain`` from ``start`` that succeeded."""
    c = t.run_items.c
    query = select(c.tenant, c.metric_id, c.period).where(
        c.kind == "sync", c.grain == grain, c.status == "succeeded", c.period >= start
    )
    with translate_errors(engine, "read run keys from"), engine.connect() as conn:
        return [(r.tenant, r.metric_id, as_date(r.period)) for r in conn.execute(query)]


@reconnecting
def pattern_key_statuses(engine: Engine, grain: str, start: date) -> dict[str, str]:
    """``{run key: status}`` of the pattern keys of ``grain`` from ``start``."""
    c = t.run_items.c
    query = select(c.run_key, c.status).where(
        c.kind == "pattern", c.grain == grain, c.period >= start
    )
    with translate_errors(engine, "read run keys from"), engine.connect() as conn:
        return {r.run_key: r.status for r in conn.execute(query)}


@reconnecting
def pattern_result_keys(engine: Engine, grain: str, start: date) -> set[PatternResultKey]:
    """The (tenant id, metric, pattern, period, dimension) of stored pattern results."""
    p = t.pattern_results.c
    query = select(p.tenant_id, p.metric_id, p.pattern, p.analysis_period, p.dimension).where(
        p.grain == grain, p.analysis_period >= start
    )
    with translate_errors(engine, "read pattern results from"), engine.connect() as conn:
        return {
            (r.tenant_id, r.metric_id, r.pattern, as_date(r.analysis_period), r.dimension)
            for r in conn.execute(query)
        }


@reconnecting
def runs_with_outcome(engine: Engine, outcome: str, limit: int = 50) -> list[dict[str, Any]]:
    """The latest runs recorded with ``outcome`` (e.g. ``abandoned``), newest first."""
    query = (
        select(t.runs)
        .where(t.runs.c.outcome == outcome)
        .order_by(desc(t.runs.c.started_at))
        .limit(limit)
    )
    with translate_errors(engine, "read runs from"), engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]
