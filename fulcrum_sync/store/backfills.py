"""Backfill records: the plan (its run keys, in order) and how far it got."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine, Integer, and_, func, or_, select, update

from fulcrum_sync.domain import InputError
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import reconnecting, translate_errors
from fulcrum_sync.store.runs import RunItem, ensure_items
from fulcrum_sync.store.upsert import insert_ignore


@dataclass(frozen=True, slots=True)
class BackfillRecord:
    """A stored backfill plan."""

    backfill_id: str
    grain: str
    start: date
    end: date
    arguments: dict[str, Any]
    total_items: int
    created_at: datetime
    finished_at: datetime | None


@reconnecting
def save_backfill(
    engine: Engine,
    backfill_id: str,
    grain: str,
    start: date,
    end: date,
    arguments: dict[str, Any],
    items: list[RunItem],
) -> None:
    """Record a backfill plan and its run keys; a plan already recorded gains any new keys.

    Shards of one backfill (pods of an Indexed Job) all call this with the same id.
    """
    ensure_items(engine, items)
    rows = [
        {"backfill_id": backfill_id, "run_key": item.run_key, "position": i}
        for i, item in enumerate(items)
    ]
    with translate_errors(engine, "record the backfill in"), engine.begin() as conn:
        insert_ignore(
            conn,
            t.backfills,
            [
                {
                    "backfill_id": backfill_id,
                    "grain": grain,
                    "start_period": start,
                    "end_period": end,
                    "arguments": arguments,
                    "total_items": len(items),
                    "created_at": datetime.now(UTC),
                }
            ],
        )
        for offset in range(0, len(rows), 2000):
            insert_ignore(conn, t.backfill_items, rows[offset : offset + 2000])
        total = conn.execute(
            select(func.count())
            .select_from(t.backfill_items)
            .where(t.backfill_items.c.backfill_id == backfill_id)
        ).scalar_one()
        conn.execute(
            update(t.backfills)
            .where(t.backfills.c.backfill_id == backfill_id)
            .values(total_items=total)
        )


@reconnecting
def get_backfill(engine: Engine, backfill_id: str) -> BackfillRecord:
    """Return a backfill by id (a unique prefix works); raise InputError if unknown."""
    if not backfill_id.strip():
        raise InputError("empty backfill id: see `fulcrum-sync status` for backfill ids")
    b = t.backfills.c
    # A prefix is matched literally: "%" and "_" in it are not wildcards.
    prefix = backfill_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    with translate_errors(engine, "read backfills from"), engine.connect() as conn:
        rows = conn.execute(
            select(t.backfills).where(
                or_(b.backfill_id == backfill_id, b.backfill_id.like(f"{prefix}%", escape="\\"))
            )
        ).all()
    if len(rows) != 1:
        what = "no backfill" if not rows else f"{len(rows)} backfills"
        raise InputError(
            f"{what} with id {backfill_id!r}: see `fulcrum-sync status` for backfill ids"
        )
    r = rows[0]
    return BackfillRecord(
        r.backfill_id,
        r.grain,
        r.start_period,
        r.end_period,
        r.arguments,
        r.total_items,
        r.created_at,
        r.finished_at,
    )


@reconnecting
def item_statuses(engine: Engine, backfill_id: str) -> dict[str, str]:
    """Return ``{run_key: status}`` for every key of a backfill."""
    i, b = t.run_items.c, t.backfill_items.c
    query = (
        select(i.run_key, i.status)
        .join(t.backfill_items, b.run_key == i.run_key)
        .where(b.backfill_id == backfill_id)
    )
    with translate_errors(engine, "read backfill progress from"), engine.connect() as conn:
        return {r[0]: r[1] for r in conn.execute(query)}


@reconnecting
def mark_finished(engine: Engine, backfill_id: str) -> None:
    """Record that every key of the backfill succeeded."""
    with translate_errors(engine, "record the backfill in"), engine.begin() as conn:
        conn.execute(
            update(t.backfills)
            .where(t.backfills.c.backfill_id == backfill_id)
            .values(finished_at=datetime.now(UTC))
        )


@reconnecting
def list_backfills(engine: Engine, limit: int = 10) -> list[dict[str, Any]]:
    """Return recent backfills with done / failed / total counts."""
    b, bi, i = t.backfills.c, t.backfill_items.c, t.run_items.c
    done = func.sum(func.cast(i.status == "succeeded", Integer))
    failed = func.sum(func.cast(i.status == "failed", Integer))
    query = (
        select(
            b.backfill_id,
            b.grain,
            b.start_period,
            b.end_period,
            b.total_items,
            b.created_at,
            b.finished_at,
            done.label("done"),
            failed.label("failed"),
        )
        .join(t.backfill_items, bi.backfill_id == b.backfill_id)
        .join(t.run_items, i.run_key == bi.run_key)
        .group_by(
            b.backfill_id,
            b.grain,
            b.start_period,
            b.end_period,
            b.total_items,
            b.created_at,
            b.finished_at,
        )
        .order_by(b.created_at.desc())
        .limit(limit)
    )
    with translate_errors(engine, "read backfills from"), engine.connect() as conn:
        return [
            {
                "backfill_id": r.backfill_id,
                "grain": r.grain,
                "start": str(r.start_period),
                "end": str(r.end_period),
                "total": r.total_items,
                "done": int(r.done or 0),
                "failed": int(r.failed or 0),
                "created_at": r.created_at,
                "finished_at": r.finished_at,
            }
            for r in conn.execute(query)
        ]


@reconnecting
def count_rows(
    engine: Engine, series: list[tuple[int, str]], grain: str, start: date, end: date
) -> int:
    """Count stored base and dimensional rows of ``series`` (tenant_id, metric_id) in a range."""
    total = 0
    with translate_errors(engine, "count series rows in"), engine.connect() as conn:
        for table in (t.metric_time_series, t.metric_dimensional_time_series):
            c = table.c
            for tenant_id, metric_id in series:
                total += conn.execute(
                    select(func.count())
                    .select_from(table)
                    .where(
                        and_(
                            c.tenant_id == tenant_id,
                            c.metric_id == metric_id,
                            c.grain == grain,
                            c.date >= start,
                            c.date <= end,
                        )
                    )
                ).scalar_one()
    return total
