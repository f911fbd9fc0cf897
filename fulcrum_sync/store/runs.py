"""Run bookkeeping: one ``runs`` row per invocation, one ``run_items`` row per run key.

A worker claims a key before working on it and holds a lease it renews; a key whose lease
expired (the process was killed) can be claimed again. PostgreSQL claims with
``SELECT … FOR UPDATE SKIP LOCKED``; SQLite with a conditional UPDATE (its writes are
serialized, so the condition is checked and set atomically).
"""

from __future__ import annotations

import dataclasses
import os
import socket
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, or_, select, update

from fulcrum_sync.secrets import redact
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import reconnecting, translate_errors
from fulcrum_sync.store.upsert import insert_ignore


class Claim(StrEnum):
    CLAIMED = "claimed"
    DONE = "done"  # already succeeded; skipped unless forced
    BUSY = "busy"  # another live worker holds it
    GONE = "gone"  # its row vanished (deleted by ``state reset``): the work cannot be recorded


@dataclass(frozen=True, slots=True)
class RunItem:
    """A run key and what it names."""

    run_key: str
    kind: str
    grain: str
    period: date
    tenant: str
    metric_id: str
    pattern: str = ""


_ITEM_FIELDS = tuple(f.name for f in dataclasses.fields(RunItem))


def now_utc() -> datetime:
    return datetime.now(UTC)


def new_owner(run_id: str) -> str:
    """Return a lease owner id naming this host, process and run."""
    return f"{socket.gethostname()}:{os.getpid()}:{run_id[:8]}"


# The runs this process started and has not finished: alive, whatever their pid says.
LIVE_RUNS: set[str] = set()


@reconnecting
def ensure_items(engine: Engine, items: list[RunItem], run_id: str | None = None) -> None:
    """Create pending ``run_items`` rows for keys not seen before.

    With ``run_id`` the run adopts the keys it means to do: new rows and existing ones no one
    works on (pending, released, failed) carry its id, so ``state reset`` leaves them alone
    while the run is alive (store/state.py).
    """
    with translate_errors(engine, "record run keys in"), engine.begin() as conn:
        ensure_items_in(conn, items, run_id)


OPEN_STATUSES = ("pending", "released", "failed")  # keys no one works on that did not succeed


def ensure_items_in(conn: Connection, items: list[RunItem], run_id: str | None = None) -> None:
    """:func:`ensure_items` inside the caller's transaction, 1,000 rows at a time."""
    now = now_utc()
    for at in range(0, len(items), 1000):
        chunk = items[at : at + 1000]
        new = {"status": "pending", "attempts": 0, "created_at": now, "run_id": run_id}
        rows = [{f: getattr(i, f) for f in _ITEM_FIELDS} | new for i in chunk]
        insert_ignore(conn, t.run_items, rows)
        if run_id is not None:
            _adopt(conn, [i.run_key for i in chunk], run_id)


def _adopt(conn: Connection, keys: list[str], run_id: str) -> None:
    """Mark the keys among ``keys`` no one works on as ``run_id``'s. On PostgreSQL rows another
    transaction has locked (claiming or adopting them) are skipped, not waited for: two runs
    adopting the same keys in different orders never deadlock."""
    c = t.run_items.c
    mine = select(c.run_key).where(
        and_(c.run_key.in_(keys), c.status.in_(OPEN_STATUSES), c.run_id.is_distinct_from(run_id))
    )
    if conn.dialect.name == "postgresql":
        mine = mine.with_for_update(skip_locked=True)
    conn.execute(update(t.run_items).where(c.run_key.in_(mine)).values(run_id=run_id))


_rc = t.run_items.c
_TS = _rc.started_at.type
# Built once, so a call only binds parameters: building these expressions per call cost more
# than the SQL (benchmarks/orchestration.py). ``force_before`` is NULL unless --force, and a
# comparison with NULL matches no row.


def _claimable(c: Any) -> Any:
    return or_(
        c.status.in_(("pending", "failed", "released")),
        and_(c.status == "running", c.lease_expires_at < bindparam("now", type_=_TS)),
        and_(c.status == "succeeded", c.finished_at < bindparam("force_before", type_=_TS)),
    )


_CLAIMABLE = _claimable(_rc)
_CLAIMED = {
    "status": "running",
    "lease_owner": bindparam("p_owner"),
    "lease_expires_at": bindparam("p_lease_until", type_=_TS),
    "run_id": bindparam("p_run_id"),
    "attempts": _rc.attempts + 1,
    "started_at": bindparam("now", type_=_TS),
    "finished_at": None,
    "error": None,
}
CLAIMED = _CLAIMED  # the values of a claimed key (bound with :func:`claim_params`)
_CLAIM = update(t.run_items).where(and_(_rc.run_key == bindparam("key"), _CLAIMABLE))
_CLAIM = _CLAIM.values(_CLAIMED)
_KEYS = _rc.run_key.in_(bindparam("keys", expanding=True))
_CLAIM_MANY = update(t.run_items).where(and_(_KEYS, _CLAIMABLE)).values(_CLAIMED)
_CLAIM_MANY = _CLAIM_MANY.returning(_rc.run_key)
# PostgreSQL: lock the claimable rows no one else has locked and take them, in ONE statement.
_free = t.run_items.alias("free")
_FREE = (
    select(_free.c.run_key)
    .where(and_(_free.c.run_key.in_(bindparam("keys", expanding=True)), _claimable(_free.c)))
    .with_for_update(skip_locked=True)
)
_TAKE_FREE = update(t.run_items).where(_rc.run_key.in_(_FREE)).values(_CLAIMED)
_TAKE_FREE = _TAKE_FREE.returning(_rc.run_key)
_STATUS_OF = select(_rc.run_key, _rc.status).where(_KEYS)
_COMPLETE = (
    update(t.run_items)
    .where(
        and_(
            _rc.run_key == bindparam("key"),
            _rc.lease_owner == bindparam("p_owner"),
            _rc.status == "running",
        )
    )
    .values(
        status=bindparam("p_status"),
        finished_at=bindparam("now", type_=_TS),
        lease_expires_at=None,
        counts=bindparam("p_counts", type_=_rc.counts.type),
        error=bindparam("p_error"),
    )
)


# A claim commits without waiting for its WAL flush (PostgreSQL): others see it at once, the
# work's own commit flushes it first, and a crash before that kills the work's transaction too.
NO_FLUSH_WAIT = "SET LOCAL synchronous_commit TO OFF"


def claim_params(
    owner: str, run_id: str, lease_seconds: int, force_before: datetime | None
) -> dict[str, Any]:
    now = now_utc()
    return {
        "now": now,
        "force_before": force_before,
        "p_owner": owner,
        "p_run_id": run_id,
        "p_lease_until": now + timedelta(seconds=lease_seconds),
    }


@reconnecting
def claim(
    engine: Engine,
    run_key: str,
    *,
    owner: str,
    run_id: str,
    lease_seconds: int,
    force_before: datetime | None = None,
) -> Claim:
    """Try to take ``run_key`` for ``owner``.

    :param force_before: also take a key that succeeded before this instant (``--force``).
    """
    c = t.run_items.c
    params = claim_params(owner, run_id, lease_seconds, force_before) | {"key": run_key}
    with translate_errors(engine, "claim a run key in"), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(NO_FLUSH_WAIT)
            taken = bool(take(conn, params | {"keys": [run_key]}))
        else:
            taken = bool(conn.execute(_CLAIM, params).rowcount)
        if taken:
            return Claim.CLAIMED
        row = conn.execute(select(c.status, c.lease_owner).where(c.run_key == run_key)).first()
        if row is None:
            return Claim.GONE
        if row.status == "succeeded":
            return Claim.DONE
        if row.status == "running" and row.lease_owner == owner:
            return Claim.CLAIMED  # ours already: this claim's first try committed, then the
            # connection was lost before the answer came (store/retry.py ran it again)
        if row.status == "running" and row.lease_owner and owner_is_dead(row.lease_owner):
            # Killed on this very host (SIGKILL, OOM): no need to wait for its lease to expire.
            dead = and_(c.run_key == run_key, c.lease_owner == row.lease_owner)
            stolen = conn.execute(update(t.run_items).where(dead).values(_CLAIMED), params).rowcount
            if stolen:
                return Claim.CLAIMED
    return Claim.BUSY


def owner_is_dead(owner: str) -> bool:
    """True when ``owner`` names a process on this host that no longer runs."""
    host, _, rest = owner.partition(":")
    pid_text = rest.split(":", 1)[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@reconnecting
def claim_many(
    engine: Engine,
    run_keys: list[str],
    *,
    owner: str,
    run_id: str,
    lease_seconds: int,
    force_before: datetime | None = None,
    items: list[RunItem] | None = None,
) -> dict[str, Claim]:
    """Try to take every key in one transaction; return each key's claim.

    Keys another live worker holds come back BUSY (on PostgreSQL, rows it has locked are
    skipped, not waited for); keys held by a dead process on this host are taken one by one.
    ``items``: the rows of keys not seen before are created (and claimed) in the same
    transaction.
    """
    if not run_keys:
        return {}
    params = claim_params(owner, run_id, lease_seconds, force_before)
    with translate_errors(engine, "claim run keys in"), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(NO_FLUSH_WAIT)
        taken = take(conn, params | {"keys": run_keys})
        left = [k for k in run_keys if k not in taken]
        rest: dict[str, str] = {}
        if left:
            rest = {k: v for k, v in conn.execute(_STATUS_OF, {"keys": left})}
        if items and len(rest) < len(left):  # keys without a row yet: make and take them
            new = set(left) - set(rest)
            ensure_items_in(conn, [i for i in items if i.run_key in new], run_id)
            got = take(conn, params | {"keys": sorted(new)})
            taken |= got
            # Rows another process made (and took) at the same instant: read what they are.
            raced = sorted(new - got)
            if raced:
                rest.update({k: v for k, v in conn.execute(_STATUS_OF, {"keys": raced})})
    claims = {k: Claim.CLAIMED for k in taken}
    for key in run_keys:
        if key in claims:
            continue
        status = rest.get(key)
        if status is None:
            claims[key] = Claim.GONE  # no row: it was deleted (or never made, without items)
        elif status == "succeeded":
            claims[key] = Claim.DONE
        else:
            claims[key] = claim(
                engine,
                key,
                owner=owner,
                run_id=run_id,
                lease_seconds=lease_seconds,
                force_before=force_before,
            )
    return claims


def take(conn: Connection, params: dict[str, Any]) -> set[str]:
    """Claim the claimable keys among ``params["keys"]`` (params of :func:`claim_params`)
    in the caller's transaction; return those taken. On PostgreSQL rows another transaction
    has locked are skipped, not waited for."""
    statement = _TAKE_FREE if conn.dialect.name == "postgresql" else _CLAIM_MANY
    return set(conn.execute(statement, params).scalars())


@reconnecting
def complete(
    engine: Engine,
    run_key: str,
    *,
    owner: str,
    succeeded: bool,
    counts: dict[str, Any] | None = None,
    error: str | None = None,
) -> bool:
    """Mark a claimed key succeeded or failed; return False if ``owner`` lost the lease."""
    with translate_errors(engine, "record a run key in"), engine.begin() as conn:
        return complete_in(conn, KeyDone(run_key, owner, succeeded, counts, error))


@dataclass(frozen=True, slots=True)
class KeyDone:
    """How a claimed run key ended, to record with the work's own writes (one transaction)."""

    run_key: str
    owner: str
    succeeded: bool
    counts: dict[str, Any] | None = None
    error: str | None = None


def complete_all_in(conn: Connection, done: list[KeyDone]) -> int:
    """Complete each of ``done`` inside the caller's transaction (one statement, many rows,
    in the order of their keys: store/leases.py); return how many were completed
    (fewer: an owner lost its lease), -1 when unknown."""
    if not done:
        return 0
    ordered = sorted(done, key=lambda d: d.run_key)
    return conn.execute(_COMPLETE, [_complete_params(d) for d in ordered]).rowcount


def completed_in(conn: Connection, done: list[KeyDone]) -> set[str]:
    """Complete the keys of ``done`` in the caller's transaction (:func:`complete_all_in`);
    return those completed. When fewer were (an owner lost its lease: another run may hold
    the key now), read which."""
    keys = {d.run_key for d in done}
    if complete_all_in(conn, done) == len(done):
        return keys
    c = t.run_items.c
    owners = {d.run_key: d.owner for d in done}
    query = select(c.run_key, c.lease_owner, c.status).where(c.run_key.in_(sorted(keys)))
    return {
        key
        for key, owner, status in conn.execute(query)
        if owner == owners[key] and status in ("succeeded", "failed")
    }


def _complete_params(d: KeyDone) -> dict[str, Any]:
    return {
        "key": d.run_key,
        "now": now_utc(),
        "p_owner": d.owner,
        "p_status": "succeeded" if d.succeeded else "failed",
        "p_counts": d.counts,
        "p_error": redact(d.error) if d.error else d.error,
    }


def complete_in(conn: Connection, done: KeyDone) -> bool:
    """:func:`complete` inside the caller's transaction (the work's own: both commit together);
    False if ``done.owner`` lost the lease."""
    return bool(conn.execute(_COMPLETE, _complete_params(done)).rowcount)
