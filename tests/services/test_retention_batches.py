"""services.retention.prune deletes in transactions of at most ``batch_rows`` rows."""

from __future__ import annotations

import os
import socket
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine, func, insert, select, update

from fulcrum_sync.domain.retention import PruneRequest
from fulcrum_sync.services import retention
from fulcrum_sync.store import tables as t

TODAY = datetime(2025, 12, 1, tzinfo=UTC)


def add_keys(engine: Engine, periods: list[date]) -> None:
    now = datetime.now(UTC)
    rows = [
        {
            "run_key": f"sync:day:{p.isoformat()}:acme::orders",
            "kind": "sync",
            "grain": "day",
            "period": p,
            "tenant": "acme",
            "metric_id": "orders",
            "pattern": "",
            "status": "succeeded",
            "attempts": 1,
            "created_at": now,
        }
        for p in periods
    ]
    with engine.begin() as conn:
        conn.execute(insert(t.run_items), rows)


def keys(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t.run_items)).scalar_one())


def test_a_prune_deletes_in_batches_and_keeps_the_latest_key(engine: Engine) -> None:
    periods = [date(2025, 11, 1) - timedelta(days=n) for n in range(23)]
    add_keys(engine, periods)
    result = retention.prune(engine, PruneRequest(10, batch_rows=5), now=TODAY)
    assert result.applied and result.rows["run keys"] == 22  # all but the latest
    assert result.deleted["run keys"] == 22
    # 22 keys in batches of 5: 5 transactions; every other part one (empty) transaction.
    assert result.batches == 5 + 5
    assert keys(engine) == 1
    again = retention.prune(engine, PruneRequest(10, batch_rows=5), now=TODAY)
    assert not again.applied and again.total == 0 and again.run_id is None  # nothing recorded


def test_old_pending_keys_a_live_run_adopted_are_kept(engine: Engine) -> None:
    periods = [date(2025, 11, 20), date(2025, 10, 1), date(2025, 10, 2)]
    add_keys(engine, periods)
    run = {
        "run_id": "live-run",
        "command": "sync",
        "arguments": {},
        "host": socket.gethostname(),
        "pid": os.getppid(),  # alive: our parent (a pid of ours would be a run we did not start)
        "started_at": datetime.now(UTC),
        "outcome": "running",
    }
    adopted = t.run_items.c.period == date(2025, 10, 1)
    with engine.begin() as conn:
        conn.execute(insert(t.runs).values(**run))
        conn.execute(update(t.run_items).where(adopted).values(status="pending", run_id="live-run"))
    result = retention.prune(engine, PruneRequest(10), now=TODAY)
    assert result.held == 1 and result.deleted["run keys"] == 1  # only 10-02 goes
    with engine.connect() as conn:
        left = {str(p)[:10] for (p,) in conn.execute(select(t.run_items.c.period))}
    assert left == {"2025-11-20", "2025-10-01"}
