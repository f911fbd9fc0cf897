"""Read what patterns analyse (series, dimension series, targets) and store their results."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine, String, Table, and_, literal, null, select, union_all

from fulcrum_sync.domain import Window
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import reading, reconnecting, translate_errors
from fulcrum_sync.store.runs import KeyDone, completed_in
from fulcrum_sync.store.tables import NO_PATTERN_DIMENSION
from fulcrum_sync.store.upsert import upsert_rows


def _frame(rows: Sequence[Any], columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=columns)
    if not frame.empty:
        frame["date"] = pd.to_datetime(frame["date"])
    return frame


def _read_dated(
    engine: Engine, table: Table, tenant_id: int, metric_id: str, grain: str, window: Window
) -> pd.DataFrame:
    c = table.c
    query = (
        select(c.date, c.value)
        .where(
            and_(
                c.tenant_id == tenant_id,
                c.metric_id == metric_id,
                c.grain == grain,
                c.date >= window.start,
                c.date <= window.end,
            )
        )
        .order_by(c.date)
    )
    with translate_errors(engine, f"read {table.name} from"), engine.connect() as conn:
        return _frame(conn.execute(query).all(), ["date", "value"])


@reconnecting
def read_series(
    engine: Engine, tenant_id: int, metric_id: str, grain: str, window: Window
) -> pd.DataFrame:
    """Return the stored base series in ``window`` (columns date, value)."""
    return _read_dated(engine, t.metric_time_series, tenant_id, metric_id, grain, window)


@reconnecting
def read_targets(
    engine: Engine, tenant_id: int, metric_id: str, grain: str, window: Window
) -> pd.DataFrame:
    """Return the stored targets in ``window`` (columns date, value)."""
    return _read_dated(engine, t.metric_targets, tenant_id, metric_id, grain, window)


@reconnecting
def read_dimension(
    engine: Engine, tenant_id: int, metric_id: str, grain: str, dimension: str, window: Window
) -> pd.DataFrame:
    """Return one dimension's stored series in ``window`` (columns date, slice, value)."""
    c = t.metric_dimensional_time_series.c
    query = (
        select(c.date, c.dimension_slice, c.value)
        .where(
            and_(
                c.tenant_id == tenant_id,
                c.metric_id == metric_id,
                c.grain == grain,
                c.dimension_name == dimension,
                c.date >= window.start,
                c.date <= window.end,
            )
        )
        .order_by(c.date, c.dimension_slice)
    )
    with translate_errors(engine, "read series from"), engine.connect() as conn:
        return _frame(conn.execute(query).all(), ["date", "slice", "value"])


@dataclass(frozen=True, slots=True)
class ContextInputs:
    """What a context's patterns read: its base series and dimension series over a history
    window, and its targets over a window of their own (frames as :func:`read_series`,
    :func:`read_targets` and :func:`read_dimension` return them)."""

    series: pd.DataFrame
    targets: pd.DataFrame
    dimensions: dict[str, pd.DataFrame]


@reconnecting
def read_inputs(
    engine: Engine,
    tenant_id: int,
    metric_id: str,
    grain: str,
    history: Window,
    targets: Window,
    dimensions: Sequence[str],
) -> ContextInputs:
    """Read a context's series, targets and ``dimensions`` in ONE statement (one round trip,
    no transaction on PostgreSQL: a single statement sees one snapshot)."""
    s, g, d = t.metric_time_series.c, t.metric_targets.c, t.metric_dimensional_time_series.c
    no_text = null().cast(String)

    def dated(c: Any, kind: str, window: Window) -> Any:
        where = and_(c.tenant_id == tenant_id, c.metric_id == metric_id, c.grain == grain)
        columns = (no_text.label("dim"), no_text.label("slice"), c.date.label("date"))
        return select(literal(kind, String).label("kind"), *columns, c.value.label("value")).where(
            where, c.date >= window.start, c.date <= window.end
        )

    parts = [dated(s, "s", history), dated(g, "t", targets)]
    if dimensions:
        parts.append(
            select(literal("d", String), d.dimension_name, d.dimension_slice, d.date, d.value)
            .where(d.tenant_id == tenant_id, d.metric_id == metric_id, d.grain == grain)
            .where(d.dimension_name.in_(list(dimensions)))
            .where(d.date >= history.start, d.date <= history.end)
        )
    both = union_all(*parts).subquery()
    by_kind, by_dim, by_slice, by_date = list(both.c)[:4]
    query = select(both).order_by(by_kind, by_dim, by_date, by_slice)
    rows: dict[tuple[str, str | None], list[Any]] = {}
    with translate_errors(engine, "read series from"), reading(engine) as conn:
        for kind, dim, slice_, day, value in conn.execute(query):
            rows.setdefault((kind, dim), []).append(
                (day, value) if kind != "d" else (day, slice_, value)
            )
    return ContextInputs(
        series=_frame(rows.get(("s", None), []), ["date", "value"]),
        targets=_frame(rows.get(("t", None), []), ["date", "value"]),
        dimensions={
            dim: _frame(rows.get(("d", dim), []), ["date", "slice", "value"]) for dim in dimensions
        },
    )


@reconnecting
def save_results(engine: Engine, rows: list[dict[str, Any]], done: list[KeyDone]) -> set[str]:
    """Store pattern results (rows of :func:`result_row`) and complete their run keys, all in
    one transaction: a context's patterns for one period commit together. Return the keys
    completed (not those whose lease its owner lost: another run holds them now)."""
    with translate_errors(engine, "store pattern results in"), engine.begin() as conn:
        upsert_rows(conn, t.pattern_results, rows)
        return completed_in(conn, done)


def result_row(
    *,
    tenant_id: int,
    metric_id: str,
    pattern: str,
    grain: str,
    period: date,
    dimension: str | None,
    version: str,
    status: str,
    window: tuple[date | None, date | None],
    result: dict[str, Any] | None,
    error: dict[str, Any] | None,
    run_id: str | None,
    run_at: datetime,
) -> dict[str, Any]:
    """The ``pattern_results`` row of one pattern run (its key replaces nothing else)."""
    return {
        "tenant_id": tenant_id,
        "metric_id": metric_id,
        "pattern": pattern,
        "grain": grain,
        "analysis_period": period,
        "dimension": dimension or NO_PATTERN_DIMENSION,
        "version": version,
        "status": status,
        "window_start": window[0],
        "window_end": window[1],
        "result": result,
        "error": error,
        "run_id": run_id,
        "run_at": run_at,
    }


@reconnecting
def read_results(
    engine: Engine,
    tenant_id: int,
    metric_id: str,
    grain: str,
    period: date | None,
    not_after: date | None = None,
) -> list[dict[str, Any]]:
    """Return a context's stored results for ``period`` (default: its latest analysed one).

    :param not_after: with ``period`` None, take the latest analysed period on or before it.
    """
    p = t.pattern_results.c
    where = and_(p.tenant_id == tenant_id, p.metric_id == metric_id, p.grain == grain)
    with translate_errors(engine, "read pattern results from"), engine.connect() as conn:
        if period is None:
            latest = select(p.analysis_period).where(where)
            if not_after is not None:
                latest = latest.where(p.analysis_period <= not_after)
            period = conn.execute(latest.order_by(p.analysis_period.desc()).limit(1)).scalar()
            if period is None:
                return []
        rows = (
            conn.execute(
                select(t.pattern_results)
                .where(and_(where, p.analysis_period == period))
                .order_by(p.pattern, p.dimension)
            )
            .mappings()
            .all()
        )
    return [dict(r) for r in rows]
