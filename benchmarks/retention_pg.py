"""How long a prune of many run keys takes on PostgreSQL, and how long each batch holds.

Fills ``run_items`` of a fresh database with CONTEXTS × DAYS succeeded day sync keys, then
counts and deletes what a 90-day retention removes, in 5,000-row transactions, timing the
count and every batch.

    python -m benchmarks.retention_pg [--contexts 1000] [--days 300]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import insert, text

from benchmarks.databases import pg_admin_url, pg_database
from fulcrum_sync.domain.retention import PRUNE_BATCH_ROWS, Cutoff
from fulcrum_sync.store import retention as store
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import open_engine

START = date(2025, 1, 1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contexts", type=int, default=1000)
    parser.add_argument("--days", type=int, default=300)
    parser.add_argument("--keep-days", type=int, default=90)
    args = parser.parse_args(argv)
    with pg_database(pg_admin_url()) as url:
        engine = open_engine(url)
        now = datetime.now(UTC)
        started = time.monotonic()
        with engine.begin() as conn:
            for d in range(args.days):
                day = START + timedelta(days=d)
                rows = [
                    {
                        "run_key": f"sync:day:{day}:t{i}::m",
                        "kind": "sync",
                        "grain": "day",
                        "period": day,
                        "tenant": f"t{i}",
                        "metric_id": "m",
                        "pattern": "",
                        "status": "succeeded",
                        "attempts": 1,
                        "created_at": now,
                    }
                    for i in range(args.contexts)
                ]
                conn.execute(insert(t.run_items), rows)
            conn.execute(text("ANALYZE run_items"))
        total = args.contexts * args.days
        print(f"{total:,} run keys inserted in {time.monotonic() - started:.1f} s")
        today = datetime.combine(START + timedelta(days=args.days), datetime.min.time(), UTC)
        cutoff = Cutoff.of(today, args.keep_days)
        started = time.monotonic()
        counts, _held = store.count_old(engine, cutoff, now)
        print(f"count: {counts['run keys']:,} old keys in {time.monotonic() - started:.2f} s")
        times: list[float] = []
        mark = [time.monotonic()]

        def on_batch(_part: str, _rows: int) -> None:
            times.append(time.monotonic() - mark[0])
            mark[0] = time.monotonic()

        started = time.monotonic()
        deleted, batches = store.delete_old(engine, cutoff, now, PRUNE_BATCH_ROWS, on_batch)
        times.sort()
        median, slowest = times[len(times) // 2], times[-1]
        print(
            f"delete: {deleted['run keys']:,} keys in {batches} transactions, "
            f"{time.monotonic() - started:.1f} s; per transaction median {median:.2f} s, "
            f"slowest {slowest:.2f} s"
        )
        engine.dispose()


if __name__ == "__main__":
    main()
