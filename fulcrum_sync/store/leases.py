"""A process's hold on the run keys it claimed: renew its leases, give its keys back.

Every statement that waits for several run keys locks them in the order of their keys
(PostgreSQL): the renewal and the release below through an ordered ``FOR UPDATE``, a
completion of several keys (``runs.complete_all_in``) by sorting them. A renewal waiting
for a key its owner's work is completing then holds no key that work needs next: before,
the renewal (in the table's order) and the completion of a batch or of a context's pattern
keys (in theirs) could wait for each other, and PostgreSQL ended one with "deadlock
detected" (tests/store/test_run_key_lock_order.py).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, and_, select, update

from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import reconnecting, translate_errors
from fulcrum_sync.store.runs import now_utc


def _held_by(owner: str) -> Any:
    """The rows of the keys ``owner`` holds, locked in the order of their keys (PostgreSQL)
    as every statement that waits for several keys locks them: a renewal waiting for a key
    the owner's work is completing then holds none that work needs next (no deadlock)."""
    c = t.run_items.c
    held = and_(c.lease_owner == owner, c.status == "running")
    mine = select(c.run_key).where(held).order_by(c.run_key).with_for_update()
    return and_(c.run_key.in_(mine.scalar_subquery()), held)


@reconnecting
def renew_leases(engine: Engine, owner: str, lease_seconds: int) -> int:
    """Extend every lease ``owner`` holds; return how many."""
    with translate_errors(engine, "renew leases in"), engine.begin() as conn:
        result = conn.execute(
            update(t.run_items)
            .where(_held_by(owner))
            .values(lease_expires_at=now_utc() + timedelta(seconds=lease_seconds))
        )
    return result.rowcount or 0


@reconnecting
def release_all(engine: Engine, owner: str) -> int:
    """Give back every key ``owner`` still holds (a stopping process); return how many."""
    with translate_errors(engine, "release run keys in"), engine.begin() as conn:
        result = conn.execute(
            update(t.run_items)
            .where(_held_by(owner))
            .values(status="released", lease_expires_at=None, error="released on shutdown")
        )
    return result.rowcount or 0


@reconnecting
def release_pending(engine: Engine, run_keys: list[str]) -> int:
    """Mark the keys among ``run_keys`` that no one started as released; return how many."""
    c = t.run_items.c
    released = 0
    with translate_errors(engine, "release run keys in"), engine.begin() as conn:
        for start in range(0, len(run_keys), 1000):
            chunk = run_keys[start : start + 1000]
            result = conn.execute(
                update(t.run_items)
                .where(and_(c.run_key.in_(chunk), c.status == "pending"))
                .values(status="released", error="not started: the run stopped early")
            )
            released += result.rowcount or 0
    return released
