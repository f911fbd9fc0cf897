"""Store a batch of contexts' syncs in ONE transaction (services/run/write_batch.py).

``sync_write.write_context`` stores one context: its series, their statuses, its data
version and its run key, in a transaction of its own. A sync of many small contexts paid
that transaction and each of its bookkeeping statements per context. Here the contexts of a
batch are stored together, each as ``write_context`` would, with the bookkeeping of the
whole batch sent together: one read (and on PostgreSQL lock) of the kept digests, one
``executemany`` of status rows, one of version bumps and one of key completions.

The batch commits whole or not at all (a StoreError leaves nothing of it). Contexts are
written in the order of their keys, and their status rows are locked in that order (on
PostgreSQL, ``FOR UPDATE`` with ``ORDER BY``), as ``write_context`` locks one context's: two
processes writing overlapping contexts wait for each other, never deadlock.

Safe to run again whole (``reconnecting`` does, after a lost connection), like
``write_context``: completing a key only touches it while this owner still holds it; the
keys whose lease was lost are found one by one and reported not done.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, select

from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import reconnecting, translate_errors
from fulcrum_sync.store.runs import KeyDone, complete_all_in
from fulcrum_sync.store.series import WriteCounts
from fulcrum_sync.store.sync_status import write_status_rows
from fulcrum_sync.store.sync_write import Kept, SeriesWrite, with_rows_stored, write_series_of
from fulcrum_sync.store.versions import ContextKey, bump_all


@dataclass(frozen=True, slots=True)
class ContextWrite:
    """One context of a batch: its series (at least its base) and how its key completes."""

    writes: Sequence[SeriesWrite]
    done: KeyDone | None = None

    @property
    def context(self) -> ContextKey:
        key = self.writes[0].key
        return (key.tenant_id, key.metric_id, key.grain)


@reconnecting
def write_contexts(
    engine: Engine, contexts: Sequence[ContextWrite]
) -> list[tuple[list[WriteCounts], bool]]:
    """Store every context of ``contexts`` in one transaction; return, per context in the
    given order, its series' counts and whether its key was completed (False without
    ``done``, or when its owner lost the lease). Raises StoreError, and then nothing of the
    batch is stored."""
    now = datetime.now(UTC)
    order = sorted(range(len(contexts)), key=lambda i: contexts[i].context)
    counts: dict[int, list[WriteCounts]] = {}
    statuses: list[dict[str, Any]] = []
    changed: list[ContextKey] = []
    done: list[KeyDone] = []
    with translate_errors(engine, "store contexts in"), engine.begin() as conn:
        kept = _kept_digests(conn, [contexts[i].context for i in order])
        for i in order:
            c = contexts[i]
            written, rows = write_series_of(conn, c.writes, kept.get(c.context, {}), now)
            counts[i] = written
            statuses.extend(rows)
            if any(w.stored or w.deleted for w in written):
                changed.append(c.context)  # its data version moves with its rows
            if c.done is not None:
                done.append(with_rows_stored(c.done, written))
        write_status_rows(conn, statuses)
        bump_all(conn, changed)
        completed = _complete(conn, done)
    return [
        (counts[i], c.done is not None and c.done.run_key in completed)
        for i, c in enumerate(contexts)
    ]


def _complete(conn: Connection, done: list[KeyDone]) -> set[str]:
    """Complete the keys of ``done`` in one statement; return those completed. When fewer
    were (an owner lost its lease: another process may hold the key now), read which."""
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


_KEPT = (
    "SELECT tenant_id, metric_id, grain, dimension, period, window_digest "
    "FROM metric_sync_status WHERE (tenant_id, metric_id, grain) IN ({}) "
    "ORDER BY tenant_id, metric_id, grain, dimension"
)
_KEPT_PG = (
    _KEPT.format("SELECT * FROM unnest(%s::integer[], %s::text[], %s::text[])") + " FOR UPDATE"
)


@functools.lru_cache(maxsize=128)
def _kept_sqlite(n: int) -> str:
    return _KEPT.format("VALUES " + ", ".join(["(?, ?, ?)"] * n))


def _kept_digests(conn: Connection, contexts: list[ContextKey]) -> dict[ContextKey, Kept]:
    """Each series' period and digest of each of ``contexts`` (sorted), read (and on
    PostgreSQL locked, in that order) in the transaction that writes them."""
    if not contexts:
        return {}
    cursor: Any = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    if conn.dialect.name == "postgresql":
        cursor.execute(_KEPT_PG, [list(column) for column in zip(*contexts, strict=True)])
    else:
        cursor.execute(_kept_sqlite(len(contexts)), [v for key in contexts for v in key])
    out: dict[ContextKey, Kept] = {}
    for tenant_id, metric_id, grain, dim, period, digest in cursor.fetchall():
        day = period if isinstance(period, date) else date.fromisoformat(period)
        out.setdefault((tenant_id, metric_id, grain), {})[dim] = (day, digest)
    return out


__all__ = ["ContextWrite", "write_contexts"]
