"""The sync status row per (tenant, metric, grain, dimension): last outcome and since when."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, select, tuple_

from fulcrum_sync.secrets import redact
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import reconnecting, translate_errors
from fulcrum_sync.store.upsert import dialect_insert


@dataclass(frozen=True, slots=True)
class SeriesStatus:
    """What the store remembers of one series' last sync."""

    dimension: str
    status: str
    last_success_at: datetime | None
    last_success_hash: str | None
    failing_since: datetime | None


_sc = t.metric_sync_status.c
# What a SeriesStatus holds, and whose it is: the other columns (dates, counts, the window
# digest) are not converted row by row for nothing.
_STATUS = select(
    _sc.tenant_id,
    _sc.metric_id,
    _sc.dimension,
    _sc.status,
    _sc.last_success_at,
    _sc.last_success_hash,
    _sc.failing_since,
)
_READ = _STATUS.where(  # built once; a call only binds parameters
    and_(
        _sc.tenant_id == bindparam("tenant_id"),
        _sc.metric_id == bindparam("metric_id"),
        _sc.grain == bindparam("grain"),
    )
)


@reconnecting
def read_statuses(
    engine: Engine, tenant_id: int, metric_id: str, grain: str
) -> dict[str, SeriesStatus]:
    """Return the status of the base series ("") and each dimension of one context."""
    params = {"tenant_id": tenant_id, "metric_id": metric_id, "grain": grain}
    with translate_errors(engine, "read sync status from"), engine.connect() as conn:
        return {
            r.dimension: SeriesStatus(
                r.dimension, r.status, r.last_success_at, r.last_success_hash, r.failing_since
            )
            for r in conn.execute(_READ, params)
        }


_READ_GRAIN = _STATUS.where(_sc.grain == bindparam("grain"))
_READ_SOME = _READ_GRAIN.where(
    tuple_(_sc.tenant_id, _sc.metric_id).in_(bindparam("contexts", expanding=True))
)

# The statuses of many contexts: (tenant_id, metric_id) -> dimension -> status.
GrainStatuses = dict[tuple[int, str], dict[str, SeriesStatus]]


@reconnecting
def read_grain_statuses(
    engine: Engine, grain: str, contexts: list[tuple[int, str]] | None = None
) -> GrainStatuses:
    """Return the status of every series of ``grain`` (of ``contexts`` only, when given:
    (tenant_id, metric_id) pairs) in one query.

    A sync reads them for many contexts at a time instead of once per context: they only
    decide FULL or INCREMENTAL and what a failure keeps, and each context's own status
    write is forward-only.
    """
    if contexts is not None and not contexts:
        return {}
    query, params = _READ_GRAIN, dict[str, Any](grain=grain)
    if contexts is not None:
        query, params = _READ_SOME, {"grain": grain, "contexts": contexts}
    out: GrainStatuses = {}
    with translate_errors(engine, "read sync status from"), engine.connect() as conn:
        for r in conn.execute(query, params):
            out.setdefault((r.tenant_id, r.metric_id), {})[r.dimension] = SeriesStatus(
                r.dimension, r.status, r.last_success_at, r.last_success_hash, r.failing_since
            )
    return out


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """What a sync of one series records, whatever its outcome."""

    key: tuple[int, str, str, str]  # tenant_id, metric_id, grain, dimension ("" for base)
    previous: SeriesStatus | None
    sync_type: str
    period: date
    window: tuple[date, date]
    definition_hash: str
    run_id: str | None


def write_status(
    conn: Connection,
    update: StatusUpdate,
    *,
    succeeded: bool,
    now: datetime,
    error: str | None,
    rows_fetched: int,
    rows_stored: int,
    rows_skipped: int,
) -> None:
    """Record one series' sync outcome (inside the caller's transaction)."""
    row = status_row(
        update,
        succeeded=succeeded,
        now=now,
        error=error,
        rows_fetched=rows_fetched,
        rows_stored=rows_stored,
        rows_skipped=rows_skipped,
    )
    write_status_rows(conn, [row])


def write_status_rows(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Write rows built by :func:`status_row` in one statement (forward-only upsert)."""
    if rows:
        conn.execute(_forward_upsert(conn.dialect.name), rows)


def status_row(
    update: StatusUpdate,
    *,
    succeeded: bool,
    now: datetime,
    error: str | None,
    rows_fetched: int,
    rows_stored: int,
    rows_skipped: int,
    digest: str | None = None,
) -> dict[str, Any]:
    """The status row one series' sync outcome writes (``digest``: of the rows the series'
    syncs wrote, store/digests.py; None: unknown)."""
    key, previous = update.key, update.previous
    row = {
        "tenant_id": key[0],
        "metric_id": key[1],
        "grain": key[2],
        "dimension": key[3],
        "status": "succeeded" if succeeded else "failed",
        "sync_type": update.sync_type,
        "period": update.period,
        "window_start": update.window[0],
        "window_end": update.window[1],
        "definition_hash": update.definition_hash,
        "last_attempt_at": now,
        "error": redact(error) if error else error,  # a run record never holds a secret
        "rows_fetched": rows_fetched,
        "rows_stored": rows_stored,
        "rows_skipped": rows_skipped,
        "run_id": update.run_id,
        "window_digest": digest,
    }
    if succeeded:
        row.update(
            last_success_at=now, last_success_hash=update.definition_hash, failing_since=None
        )
    else:
        row.update(
            last_success_at=previous.last_success_at if previous else None,
            last_success_hash=previous.last_success_hash if previous else None,
            failing_since=(previous.failing_since if previous and previous.failing_since else now),
        )
    return row


@functools.lru_cache(maxsize=4)
def _forward_upsert(dialect_name: str) -> Any:
    """The status upsert that never moves a series back to an older period.

    A backfill of older periods stores their rows but leaves the status of a series that
    was already synced for a later period as it was (SPEC §5).
    """
    table = t.metric_sync_status
    stmt = dialect_insert(dialect_name, table)
    keys = [c.name for c in table.primary_key.columns]
    return stmt.on_conflict_do_update(
        index_elements=keys,
        set_={c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys},
        where=table.c.period <= stmt.excluded.period,
    )


@reconnecting
def record_failure(
    engine: Engine,
    update: StatusUpdate,
    *,
    error: str | None,
    rows_fetched: int,
    rows_skipped: int,
) -> None:
    """Record that one series' sync failed, in a transaction of its own."""
    with translate_errors(engine, "record a failure in"), engine.begin() as conn:
        write_status(
            conn,
            update,
            succeeded=False,
            now=datetime.now(UTC),
            error=error,
            rows_fetched=rows_fetched,
            rows_stored=0,
            rows_skipped=rows_skipped,
        )
