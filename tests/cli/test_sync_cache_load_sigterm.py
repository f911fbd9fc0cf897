"""``sync --cache-load`` on SIGTERM while its batched cache load runs: the batch in flight
finishes, exit 143, the run recorded ``interrupted`` with every context reported, no key left
running; the next run finds the tables loaded.

As in test_cache_load_sigterm.py, the slow sink is real: the local cache on PostgreSQL with
every cache table held by another session's ``LOCK TABLE ... ACCESS EXCLUSIVE``. The sync of
the next period changes every series, so its load (at the end of the run) blocks on the lock.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_invoke import process_env, run_process
from sqlalchemy import select
from test_cache_load_sigterm import METRICS, sigterm_while_the_load_waits, write_catalog

from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import open_engine

FIRST, NEXT = "2025-09-30", "2025-10-01"
SCHEDULED = ("sync", "--grain", "day", "--no-patterns", "--cache-load", "--period")


@pytest.mark.slow
def test_sigterm_during_a_scheduled_cache_load_exits_143_and_records_interrupted(
    pg_url: str, tmp_path: Path
) -> None:
    # One worker, no patterns: its contexts are stored in batches (services/run/write_batch.py)
    # and their results held twice, for their batch and for the cache load; the same SIGTERM
    # with 4 workers (unbatched) is test_cache_load_beside_a_holder's.
    env = process_env(pg_url) | {"FULCRUM_SYNC_WORKERS": "1"}
    for args in (
        ["catalog", "load", str(write_catalog(tmp_path / "c.yaml"))],
        ["sync", "--grain", "day", "--period", FIRST, "--no-patterns", "--cache-load"],
    ):
        done = run_process(*args, env=env)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    stopped = sigterm_while_the_load_waits(pg_url, env, *SCHEDULED, NEXT)
    out, err, seconds = stopped.out, stopped.err, stopped.seconds
    assert stopped.returncode == 143, out[-2000:] + err
    engine = open_engine(pg_url)
    try:
        with engine.connect() as conn:
            runs = conn.execute(
                select(t.runs.c.outcome, t.runs.c.summary)
                .where(t.runs.c.command == "sync")
                .order_by(t.runs.c.started_at)
            ).all()
            keys = [r[0] for r in conn.execute(select(t.run_items.c.status))]
            loads = conn.execute(select(t.cache_loads.c.status)).scalars().all()
    finally:
        engine.dispose()
    assert [r[0] for r in runs] == ["succeeded", "interrupted"]
    summary = runs[-1][1]
    # every context synced and was reported with its load: the batch in flight finished
    assert summary["contexts"] == len(METRICS) and summary["not_started"] == 0, summary
    assert summary["cache"] == {"succeeded": len(METRICS)}, summary
    assert set(loads) == {"succeeded"}
    assert "running" not in keys
    print(f"figures: sync --cache-load exit 143 {seconds:.2f}s after SIGTERM, summary {summary}")

    again = run_process(
        "sync", "--grain", "day", "--period", NEXT, "--no-patterns", "--cache-load", env=env
    )
    assert again.returncode == 0, again.stdout[-2000:]
    engine = open_engine(pg_url)
    try:
        with engine.connect() as conn:
            last = conn.execute(
                select(t.runs.c.summary).order_by(t.runs.c.started_at.desc()).limit(1)
            ).scalar_one()
    finally:
        engine.dispose()
    assert last["cache"] == {"unchanged": len(METRICS)}, last  # loaded before the exit
