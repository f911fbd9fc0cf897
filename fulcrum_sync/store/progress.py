"""How far each context got, from its run keys: the latest period whose sync succeeded, and
the pattern keys left unfinished (``sync --catch-up`` and ``status`` read these).

A sync key succeeds only when every series of its context was stored for that period, so
its latest succeeded period is what the context is truly synced up to. (The sync status
rows are per series and also record failed attempts.)
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine, and_, func, or_, select

from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import reconnecting, translate_errors
from fulcrum_sync.store.runs import owner_is_dead
from fulcrum_sync.store.state import as_date

ContextKey = tuple[str, str]  # tenant identifier, metric_id


@reconnecting
def latest_synced(engine: Engine, grain: str) -> dict[ContextKey, date]:
    """Return the latest period whose sync key succeeded, per (tenant, metric) of ``grain``."""
    c = t.run_items.c
    query = (
        select(c.tenant, c.metric_id, func.max(c.period))
        .where(and_(c.kind == "sync", c.grain == grain, c.status == "succeeded"))
        .group_by(c.tenant, c.metric_id)
    )
    with translate_errors(engine, "read run keys from"), engine.connect() as conn:
        return {(r[0], r[1]): as_date(r[2]) for r in conn.execute(query)}


def _unfinished(now: datetime) -> Any:
    """Keys no one is working on that did not succeed: failed, released, or a dead lease.

    Pending keys are left out: they are a plan not started yet (a backfill's), not a failure.
    """
    c = t.run_items.c
    return or_(
        c.status.in_(("failed", "released")),
        and_(c.status == "running", c.lease_expires_at < now),
    )


def _pending_after_sync() -> Any:
    """Pattern keys not started whose period's sync key succeeded: a run that synced the
    period stopped (SIGTERM, SIGKILL) before its patterns, which are due now."""
    c = t.run_items.c
    s = t.run_items.alias("s")
    synced = (
        select(s.c.run_key)
        .where(
            and_(
                s.c.kind == "sync",
                s.c.status == "succeeded",
                s.c.grain == c.grain,
                s.c.period == c.period,
                s.c.tenant == c.tenant,
                s.c.metric_id == c.metric_id,
            )
        )
        .exists()
    )
    return and_(c.status == "pending", synced)


@reconnecting
def unfinished_patterns(
    engine: Engine,
    grain: str,
    start: date | None = None,
    end: date | None = None,
    *,
    pending: bool = False,
) -> list[dict[str, Any]]:
    """Return the unfinished pattern keys of ``grain`` (in ``start..end``), oldest first.

    ``pending`` (a run about to do them): also the keys not started whose period is synced
    (:func:`_pending_after_sync`) and the keys a process on this host that is gone (SIGKILL)
    still holds. Each row: tenant, metric_id, period, pattern, status, error, run_key,
    attempts.
    """
    c = t.run_items.c
    now = datetime.now(UTC)
    unfinished = _unfinished(now)
    if pending:
        unfinished = or_(unfinished, _pending_after_sync(), c.status == "running")
    where = and_(c.kind == "pattern", c.grain == grain, unfinished)
    if start is not None:
        where = and_(where, c.period >= start)
    if end is not None:
        where = and_(where, c.period <= end)
    query = (
        select(c.tenant, c.metric_id, c.period, c.pattern, c.status, c.error, c.run_key)
        .add_columns(c.attempts, c.lease_owner, c.lease_expires_at)
        .where(where)
        .order_by(c.period, c.tenant, c.metric_id, c.run_key)
    )
    with translate_errors(engine, "read run keys from"), engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        {
            "tenant": r.tenant,
            "metric_id": r.metric_id,
            "period": as_date(r.period),
            "pattern": r.pattern,
            "status": r.status,
            "error": r.error,
            "run_key": r.run_key,
            "attempts": r.attempts,
        }
        for r in rows
        if r.status != "running" or not _held_by_live(r.lease_owner, r.lease_expires_at, now)
    ]


def _held_by_live(owner: str | None, until: datetime | None, now: datetime) -> bool:
    """True when a running key's lease is current and its owner is not known to be gone."""
    if until is None or until < now:  # UTCDateTime reads back timezone-aware
        return False
    return not (owner and owner_is_dead(owner))


@reconnecting
def pattern_keys_of_synced(
    engine: Engine, grain: str, start: date, end: date
) -> dict[tuple[str, str, date], int]:
    """For each period in ``start..end`` whose sync key succeeded, per (tenant, metric): how
    many pattern keys it has (any status). Fewer than its patterns call for is a hole left by
    a run that stopped before making them (before keys were made up front)."""
    s = t.run_items.alias("s")
    p = t.run_items.alias("p")
    same = and_(
        p.c.kind == "pattern",
        p.c.grain == s.c.grain,
        p.c.period == s.c.period,
        p.c.tenant == s.c.tenant,
        p.c.metric_id == s.c.metric_id,
    )
    query = (
        select(s.c.tenant, s.c.metric_id, s.c.period, func.count(p.c.run_key))
        .select_from(s.outerjoin(p, same))
        .where(
            and_(
                s.c.kind == "sync",
                s.c.status == "succeeded",
                s.c.grain == grain,
                s.c.period >= start,
                s.c.period <= end,
            )
        )
        .group_by(s.c.tenant, s.c.metric_id, s.c.period)
    )
    with translate_errors(engine, "read run keys from"), engine.connect() as conn:
        return {(r[0], r[1], as_date(r[2])): int(r[3]) for r in conn.execute(query)}
