"""The life of a ``runs`` row past its start: heartbeats, and closing the runs of dead processes.

A live run refreshes its ``heartbeat_at``. A row still ``running`` whose process is gone
(killed, out of memory, the database lost for good) is closed ``abandoned`` by the next run
that starts, and the keys it held are released: on this host when its pid no longer runs, on
another host when its heartbeat is older than a lease.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, select, update

from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import reconnecting, translate_errors
from fulcrum_sync.store.runs import LIVE_RUNS, now_utc

ABANDONED = "abandoned"
RUNNING = "running"
# A pid on this host may have been reused by an unrelated process: a heartbeat this many
# leases old closes the run anyway.
_SAME_HOST_LEASES = 3


@dataclass(frozen=True, slots=True)
class AbandonedRun:
    """A run closed ``abandoned``: its process was gone while its record said ``running``."""

    run_id: str
    command: str
    host: str
    pid: int
    started_at: datetime
    closed_at: datetime | None
    last_heartbeat: datetime | None
    error: str | None


@reconnecting
def beat(engine: Engine, run_id: str) -> None:
    """Refresh ``run_id``'s heartbeat (it is alive)."""
    c = t.runs.c
    with translate_errors(engine, "record the run's heartbeat in"), engine.begin() as conn:
        conn.execute(
            update(t.runs)
            .where(and_(c.run_id == run_id, c.outcome == RUNNING))
            .values(heartbeat_at=now_utc())
        )


@reconnecting
def close_abandoned(
    engine: Engine, *, lease_seconds: int, live: frozenset[str] | None = None
) -> list[AbandonedRun]:
    """Close every ``running`` run whose process is gone as ``abandoned``; release its keys.

    :param lease_seconds: a run on another host is gone when its heartbeat is older.
    :param live: run ids known alive (default: the runs this process started and has not
        finished).
    Return the runs closed (two runs starting together close each dead run once).
    """
    c = t.runs.c
    now = now_utc()
    live = frozenset(LIVE_RUNS) if live is None else live
    closed: list[AbandonedRun] = []
    with translate_errors(engine, "read runs from"), engine.connect() as conn:
        rows = conn.execute(select(t.runs).where(c.outcome == RUNNING)).all()
    gone = [r for r in rows if r.run_id not in live and _gone(r, now, lease_seconds)]
    if not gone:
        return []  # the usual case: a read, no write
    with translate_errors(engine, "close abandoned runs in"), engine.begin() as conn:
        for row in gone:
            error = (
                f"abandoned: process {row.pid} on {row.host} is gone; last sign of life "
                f"{_iso(row.heartbeat_at or row.started_at)}"
            )
            summary = {**(row.summary or {}), "error": error}
            done = conn.execute(
                update(t.runs)
                .where(and_(c.run_id == row.run_id, c.outcome == RUNNING))
                .values(outcome=ABANDONED, finished_at=now, summary=summary)
            )
            if not done.rowcount:
                continue  # another starting run closed it first
            _release_keys(conn, row.run_id)
            closed.append(
                AbandonedRun(
                    row.run_id, row.command, row.host, row.pid, row.started_at, now,
                    row.heartbeat_at, error,
                )
            )  # fmt: skip
    return closed


def _release_keys(conn: Any, run_id: str) -> int:
    c = t.run_items.c
    result = conn.execute(
        update(t.run_items)
        .where(and_(c.run_id == run_id, c.status == RUNNING))
        .values(status="released", lease_expires_at=None, error="released: its run was abandoned")
    )
    return result.rowcount or 0


@reconnecting
def abandoned_since(engine: Engine, since: datetime) -> list[AbandonedRun]:
    """The runs closed ``abandoned`` that started at or after ``since``, newest first."""
    c = t.runs.c
    query = (
        select(t.runs)
        .where(and_(c.outcome == ABANDONED, c.started_at >= since))
        .order_by(c.started_at.desc())
    )
    with translate_errors(engine, "read runs from"), engine.connect() as conn:
        return [
            AbandonedRun(
                r.run_id, r.command, r.host, r.pid, r.started_at, r.finished_at,
                r.heartbeat_at, (r.summary or {}).get("error"),
            )
            for r in conn.execute(query)
        ]  # fmt: skip


def _gone(row: Any, now: datetime, lease_seconds: int) -> bool:
    """True when the process of a ``running`` row is gone."""
    last = row.heartbeat_at or row.started_at
    if row.host != socket.gethostname():
        return bool(last < now - timedelta(seconds=lease_seconds))
    if last < now - timedelta(seconds=lease_seconds * _SAME_HOST_LEASES):
        return True  # the pid may be alive, but as another program
    if row.pid == os.getpid():
        return True  # not one of ours (``live``): an earlier life of this pid (a restart)
    return not _alive(row.pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _iso(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else "never"
