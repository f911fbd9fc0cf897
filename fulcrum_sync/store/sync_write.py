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

Safe to run again whole (``reconnecting`` does, after a lost connection): upserts and
replaces are idempotent, the status upsert never moves a series back, and completing a key
only touches it while this owner still holds it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, update

from fulcrum_sync.store import digests
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import reconnecting, translate_errors
from fulcrum_sync.store.runs import KeyDone, complete_in
from fulcrum_sync.store.series import (
    CleanRow,
    SeriesKey,
    WriteCounts,
    replace_series,
    upsert_series,
)
from fulcrum_sync.store.sync_status import StatusUpdate, status_row, write_status_rows
from fulcrum_sync.store.versions import bump


@dataclass(frozen=True, slots=True)
class SeriesWrite:
    """One series of a context's sync: its rows to store, or why its fetch failed.

    :param rows: the sanitized rows; None when the fetch failed (``error`` says why), and
        then only the failure is recorded in its status.
    :param full: replace the whole series (FULL) instead of upserting the rows.
    """

    key: SeriesKey
    status: StatusUpdate
    rows: list[CleanRow] | None
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
) -> list[WriteCounts]:
    """Store every series of one context and record each one's status in one transaction.

    With ``done`` the context's run key is completed in the same transaction (its counts get
    ``rows_stored``: the rows this transaction stored); ``also`` then runs in it too (the
    sync claims the context's pattern keys there: store/claims.py). Returns each
    write's counts (zeros for a failed fetch). Raises StoreError, and then nothing of it is
    stored: the caller may store the series one by one to isolate the one that fails.
    """
    now = datetime.now(UTC)
    with translate_errors(engine, "store a context in"), engine.begin() as conn:
        kept = _kept_digests(conn, writes[0].key) if writes else {}
        counts, statuses = write_series_of(conn, writes, kept, now)
        write_status_rows(conn, statuses)
        changed = [w.key for w, c in zip(writes, counts, strict=True) if c.stored or c.deleted]
        if changed:  # the context's data version moves with its rows (cache loads compare it)
            bump(conn, changed[0].tenant_id, changed[0].metric_id, changed[0].grain)
        if done is not None:
            complete_in(conn, with_rows_stored(done, counts))
        if also is not None:
            also(conn)
    return counts


Kept = dict[str, tuple[date, str | None]]  # dimension ("" the base) -> its period and digest


def write_series_of(
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


def with_rows_stored(done: KeyDone, counts: Sequence[WriteCounts]) -> KeyDone:
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
_KEPT = (  # on the driver's cursor: a statement of SQLAlchemy's cost more than the query
    "SELECT dimension, period, window_digest FROM metric_sync_status "
    "WHERE tenant_id = {0} AND metric_id = {0} AND grain = {0}"
)  # locked (PostgreSQL) in the order of the key, as every writer locks them: no deadlock
_KEPT_SQLITE = _KEPT.format("?")
_KEPT_PG = _KEPT.format("%s") + " ORDER BY dimension FOR UPDATE"


def _kept_digests(conn: Connection, key: SeriesKey) -> Kept:
    """Each series' period and digest of one context, read (and on PostgreSQL locked) in the
    transaction that writes them."""
    cursor: Any = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    pg = conn.dialect.name == "postgresql"
    cursor.execute(_KEPT_PG if pg else _KEPT_SQLITE, (key.tenant_id, key.metric_id, key.grain))
    return {
        dim: (period if isinstance(period, date) else date.fromisoformat(period), digest)
        for dim, period, digest in cursor.fetchall()
    }


def _forget_digest(conn: Connection, key: SeriesKey) -> None:
    params = {"t": key.tenant_id, "m": key.metric_id, "g": key.grain, "d": key.dimension or ""}
    conn.execute(_FORGET, params)
