"""Store one context's sync in ONE transaction: its series, their statuses and its run key.

A context's sync used to cost a transaction per series (series + status), one to read the
statuses and one to complete the run key: on PostgreSQL each commit waits for a WAL flush,
so a context cost 5 of them. Here the series of a context (base and dimensions), the status
of each (success, or the failure of its fetch) and, with ``done``, the completion of its
claimed run key commit together, or not at all.

A write that changed rows raises the context's data version (store/versions.py) in the same
transaction. A single series (the fallback when a context's transaction fails) is a
context of one write.

Safe to run again whole (``reconnecting`` does, after a lost connection): upserts and
replaces are idempotent, the status upsert never moves a series back, and completing a key
only touches it while this owner still holds it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine

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
    counts: list[WriteCounts] = []
    statuses: list[dict[str, Any]] = []
    with translate_errors(engine, "store a context in"), engine.begin() as conn:
        for w in writes:
            if w.rows is None:
                written = WriteCounts()
            else:
                written = (replace_series if w.full else upsert_series)(conn, w.key, w.rows)
            counts.append(written)
            statuses.append(
                status_row(
                    w.status,
                    succeeded=w.rows is not None,
                    now=now,
                    error=w.error,
                    rows_fetched=w.rows_fetched,
                    rows_stored=written.stored,
                    rows_skipped=w.rows_skipped,
                )
            )
        write_status_rows(conn, statuses)
        changed = [w.key for w, c in zip(writes, counts, strict=True) if c.stored or c.deleted]
        if changed:  # the context's data version moves with its rows (cache loads compare it)
            bump(conn, changed[0].tenant_id, changed[0].metric_id, changed[0].grain)
        if done is not None:
            stored = sum(c.stored for c in counts)
            complete_in(conn, replace(done, counts={**(done.counts or {}), "rows_stored": stored}))
        if also is not None:
            also(conn)
    return counts
