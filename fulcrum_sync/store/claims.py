"""Claims of a context's pattern keys without a transaction of their own.

A context's pattern keys used to be claimed in a transaction of their own after its sync (on
PostgreSQL: a checkout, BEGIN, SET, the claim, a status read, COMMIT). Now a synced
context's pattern keys are claimed in the transaction that stores its sync
(store/sync_write.py calls :func:`take_in`), and a context whose sync key is found done
(another process synced it, or an earlier run did) has its unfinished pattern keys claimed in
the transaction that found it done (:func:`claim_context`). A second process that reaches a
context the first one synced and is analysing then finds its pattern keys busy in that same
transaction, and moves on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, select, update

from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import reconnecting, translate_errors
from fulcrum_sync.store.runs import (
    CLAIMED,
    NO_FLUSH_WAIT,
    Claim,
    claim_params,
    owner_is_dead,
    take,
)

_c = t.run_items.c
_HOLDERS = select(_c.run_key, _c.status, _c.lease_owner).where(
    _c.run_key.in_(bindparam("keys", expanding=True))
)


@dataclass(frozen=True, slots=True)
class Claimant:
    """Who claims: the lease owner, its run, the lease, and ``--force``'s instant."""

    owner: str
    run_id: str
    lease_seconds: int
    force_before: datetime | None = None

    def params(self) -> dict[str, Any]:
        return claim_params(self.owner, self.run_id, self.lease_seconds, self.force_before)


def take_in(conn: Connection, run_keys: list[str], who: Claimant) -> dict[str, Claim]:
    """Claim what can be claimed of ``run_keys`` in the caller's transaction; return each
    key's claim (as :func:`~fulcrum_sync.store.runs.claim` would: ours already counts as
    claimed, a dead process's key on this host is taken over)."""
    if not run_keys:
        return {}
    params = who.params()
    claims = {key: Claim.CLAIMED for key in take(conn, params | {"keys": run_keys})}
    left = [k for k in run_keys if k not in claims]
    if left:
        rows = {row.run_key: row for row in conn.execute(_HOLDERS, {"keys": left})}
        for key in left:
            claims[key] = _left(conn, rows.get(key), who, params)
    return claims


def _left(conn: Connection, row: Any, who: Claimant, params: dict[str, Any]) -> Claim:
    """The claim of a key :func:`take` did not take (``row``: its status and holder)."""
    if row is None:
        return Claim.GONE
    if row.status == "succeeded":
        return Claim.DONE
    if row.status != "running" or not row.lease_owner:
        return Claim.BUSY  # claimable, but another transaction had it locked
    if row.lease_owner == who.owner:
        return Claim.CLAIMED  # ours: a first try committed before its connection was lost
    if owner_is_dead(row.lease_owner):  # killed on this host: no need to wait for its lease
        dead = and_(_c.run_key == row.run_key, _c.lease_owner == row.lease_owner)
        if conn.execute(update(t.run_items).where(dead).values(CLAIMED), params).rowcount:
            return Claim.CLAIMED
    return Claim.BUSY


@reconnecting
def claim_context(
    engine: Engine, sync_key: str, pattern_keys: list[str], who: Claimant
) -> tuple[Claim, dict[str, Claim]]:
    """Claim a context's sync key; when it is done already, claim its pattern keys that are
    not in the same transaction. Returns the sync key's claim and, when it is DONE, each
    pattern key's (none otherwise: a claimed context's pattern keys are claimed with its
    sync's writes)."""
    with translate_errors(engine, "claim a run key in"), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(NO_FLUSH_WAIT)
        sync = take_in(conn, [sync_key], who)[sync_key]
        if sync is Claim.DONE and pattern_keys:
            return sync, take_in(conn, pattern_keys, who)
    return sync, {}
