"""Store one context's sync in ONE transaction: its series, their statuses and its run key.

A context's sync used to cost a transaction per series (series + status), one to read the
statuses and one to complete the run key: on PostgreSQL each commit waits for a WAL flush,
so a context cost 5 of them. Here the series of a context (base and dimensions), the status
of each (success, or the failure of its fetch) and, with ``done``, the completion of its
claimed run key commit together, or not at all.

A write that changed rows raises the context's data version (store/versions.py) in the same
transaction. Each series' status keeps a digest of what it wrote (store/digests.py), read
back first in the same transaction: the rows it says are stored unchanged are neither read
back nor written. A single series (the fallback when a context's transaction fails) is a
context of one write.

:func:`write_contexts` stores a batch of contexts the same way in ONE transaction
(services/run/write_batch.py): a sync of many small contexts paid a transaction and each
bookkeeping statement per context. Both go through one body: one read (on PostgreSQL, lock)
of the contexts' kept digests, their series, then one ``executemany`` each of status rows,
version bumps and key completions. Contexts are written in the order of their keys and
their status rows locked in that order (``FOR UPDATE`` with ``ORDER BY``): two processes
writing overlapping contexts wait for each other, never deadlock.

Safe to run again whole (``reconnecting`` does, after a lost connection): upserts and
replaces are idempotent, the status upsert never moves a series back, and completing a key
only touches it while this owner still holds it (the keys whose lease was lost are found
and reported not done).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, update

from fulcrum_sync.store import digests
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import reconnecting, translate_errors
from fulcrum_sync.store.runs import KeyDone, completed_in
from fulcrum_sync.store.series import (
    CleanRow,
    SeriesKey,
    WriteCounts,
    replace_series,
    upsert_series,
)
from fulcrum_sync.store.sync_status import StatusUpdate, status_row, write_status_rows
from fulcrum_sync.store.versions import ContextKey, bump_all


@dataclass(frozen=True, slots=True)
class SeriesWrite:
    """One series of a context's sync: its rows to store, or why its fetch failed.

    :param rows: the sanitized rows; None when the fetch failed (``error`` says why), and
        then only the failure is recorded in its status.
    :param full: replace the whole series (FULL) instead of upserting the rows.
    """

    key: SeriesKey
    status: StatusUpdate
    rows: Sequence[CleanRow] | None
    full: bool = False
    rows_fetched: int = 0
    rows_skipped: int = 0
    error: str | None = None
    digest_from: date | None = None  # where the next incremental windows start (digests.py)


@reconnecting
def write_context(
    engine: Engine,
    writes: Sequence[SeriesWrite],
    *,
    done: KeyDone | None = None,
    also: Callable[[Connection], object] | None = None,
) -> tuple[list[WriteCounts], bool]:
    """Store every series of one context and record each one's status in one transaction.

    With ``done`` the context's run key is completed in the same transaction (its counts get
    ``rows_stored``: the rows this transaction stored); ``also`` then runs in it too, but
    only when the key was completed (the sync claims the context's pattern keys there:
    store/claims.py; an owner that lost the key's lease claims nothing). Returns each
    write's counts (zeros for a failed fetch) and whether the key was completed. Raises
    StoreError, and then nothing of it is stored: the caller may store the series one by
    one to isolate the one that fails.
    """
    with translate_errors(engine, "store a context in"), engine.begin() as conn:
        ((counts, completed),) = _write_in(conn, [ContextWrite(writes, done)])
        if also is not None and completed:
            also(conn)
    return counts, completed


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
    with translate_errors(engine, "store contexts in"), engine.begin() as conn:
        return _write_in(conn, contexts)


def _write_in(
    conn: Connection, contexts: Sequence[ContextWrite]
) -> list[tuple[list[WriteCounts], bool]]:
    """:func:`write_contexts` inside the caller's transaction (one context: write_context)."""
    now = datetime.now(UTC)
    order = sorted(range(len(contexts)), key=lambda i: contexts[i].context)
    counts: dict[int, list[WriteCounts]] = {}
    statuses: list[dict[str, Any]] = []
    changed: list[ContextKey] = []
    done: list[KeyDone] = []
    kept = _kept_digests(conn, [contexts[i].context for i in order])
    for i in order:
        c = contexts[i]
        written, rows = _write_series_of(conn, c.writes, kept.get(c.context, {}), now)
        counts[i] = written
        statuses.extend(rows)
        if any(w.stored or w.deleted for w in written):
            changed.append(c.context)  # its data version moves with its rows (cache loads)
        if c.done is not None:
            done.append(_with_rows_stored(c.done, written))
    write_status_rows(conn, statuses)
    bump_all(conn, changed)
    completed = completed_in(conn, done)
    return [
        (counts[i], c.done is not None and c.done.run_key in completed)
        for i, c in enumerate(contexts)
    ]


Kept = dict[str, tuple[date, str | None]]  # dimension ("" the base) -> its period and digest


def _write_series_of(
    conn: Connection, writes: Sequence[SeriesWrite], kept: Kept, now: datetime
) -> tuple[list[WriteCounts], list[dict[str, Any]]]:
    """Store the series of one context (``kept``: their digests, read in this transaction);
    return each one's counts and the status rows to write for them."""
    counts: list[WriteCounts] = []
    statuses: list[dict[str, Any]] = []
    for w in writes:
        period, digest = kept.get(w.key.dimension or "", (None, None))
        written, digest = _write_series(conn, w, digest)
        counts.append(written)
        if period is not None and period > w.status.period and (written.stored or written.deleted):
            _forget_digest(conn, w.key)  # its status row stays on the later period
        statuses.append(
            status_row(
                w.status,
                succeeded=w.rows is not None,
                now=now,
                error=w.error,
                rows_fetched=w.rows_fetched,
                rows_stored=written.stored,
                rows_skipped=w.rows_skipped,
                digest=digest,
            )
        )
    return counts, statuses


def _with_rows_stored(done: KeyDone, counts: Sequence[WriteCounts]) -> KeyDone:
    """``done`` with the rows its context's transaction stored in its counts."""
    stored = sum(c.stored for c in counts)
    return replace(done, counts={**(done.counts or {}), "rows_stored": stored})


def _write_series(
    conn: Connection, w: SeriesWrite, digest: str | None
) -> tuple[WriteCounts, str | None]:
    """Store one series' rows; return its counts and the digest its status keeps."""
    if w.rows is None:
        return WriteCounts(), digest  # a failed fetch wrote nothing: the digest still holds
    prepared = digests.prepare(w.rows, dimensional=w.key.dimension is not None)
    if w.full:
        written = replace_series(conn, w.key, w.rows)
    else:
        known = digests.unchanged_prefix(prepared, digest) if prepared else None
        written = upsert_series(conn, w.key, w.rows, known=known or 0)
    return written, digests.encode(prepared, w.digest_from) if prepared else None


_sc = t.metric_sync_status.c
_SERIES = and_(
    _sc.tenant_id == bindparam("t"), _sc.metric_id == bindparam("m"), _sc.grain == bindparam("g")
)
_FORGET = (
    update(t.metric_sync_status)
    .where(and_(_SERIES, _sc.dimension == bindparam("d")))
    .values(window_digest=None)
)


_KEPT_COLUMNS = "s.tenant_id, s.metric_id, s.grain, s.dimension, s.period, s.window_digest"
# On the driver's cursor (a statement of SQLAlchemy's costs more than the query), by the
# status rows' whole key. PostgreSQL locks them in the order of the keys, as every writer
# does: no deadlock. SQLite (no row locks) joins a VALUES list: a row-value ``IN (VALUES
# ...)`` would search its index by the tenant alone, scanning every series of the tenant.
_KEPT_PG = (
    f"SELECT {_KEPT_COLUMNS} FROM metric_sync_status AS s "
    "WHERE (s.tenant_id, s.metric_id, s.grain) IN "
    "(SELECT * FROM unnest(%s::integer[], %s::text[], %s::text[])) "
    "ORDER BY s.tenant_id, s.metric_id, s.grain, s.dimension FOR UPDATE"
)


@functools.lru_cache(maxsize=128)
def _kept_sqlite(n: int) -> str:
    return (
        f"SELECT {_KEPT_COLUMNS} FROM (VALUES {', '.join(['(?, ?, ?)'] * n)}) AS v "
        "JOIN metric_sync_status AS s ON s.tenant_id = v.column1 "
        "AND s.metric_id = v.column2 AND s.grain = v.column3"
    )


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


def _forget_digest(conn: Connection, key: SeriesKey) -> None:
    params = {"t": key.tenant_id, "m": key.metric_id, "g": key.grain, "d": key.dimension or ""}
    conn.execute(_FORGET, params)
