"""Backfill fetch efficiency: rows fetched from the source per row stored in the range.

A 90-day daily backfill (``services.backfill.run``, patterns off) of the demo catalog on a
fresh SQLite state database. The source is the demo generator behind a counting wrapper,
so the rows and queries fetched are counted where they leave the source, not taken from
the service's own report (both are shown). For scale, the rows a per-period re-fetch of
each period's incremental lookback window would have fetched (what the old orchestrator
did) are computed from the stored rows per day.
"""

from __future__ import annotations

import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from benchmarks.catalogs import HISTORY_START, settings
from benchmarks.common import Figure, Measurement, Progress, Sizes
from benchmarks.databases import sqlite_url

TARGET_RATIO = 1.1


class CountingSource:
    """Delegate to another source; count queries and rows returned."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.queries = 0
        self.rows = 0
        self._lock = threading.Lock()

    def fetch_series(self, request: Any) -> list[Any]:
        rows: list[Any] = self.inner.fetch_series(request)
        with self._lock:
            self.queries += 1
            self.rows += len(rows)
        return rows

    def fetch_metadata(self, tenant: str) -> Any:
        return self.inner.fetch_metadata(tenant)

    def stats(self) -> Any:
        return self.inner.stats()

    def close(self) -> None:
        self.inner.close()


def measure(sizes: Sizes, progress: Progress) -> Measurement:
    """Backfill ``sizes.backfill_days`` days from the history start and count the rows."""
    from fulcrum_sync.domain import Grain, SyncType
    from fulcrum_sync.services import backfill
    from fulcrum_sync.sources import DemoSource
    from fulcrum_sync.store.engine import open_engine

    days = sizes.backfill_days
    start, end = HISTORY_START, HISTORY_START + timedelta(days=days - 1)
    scope = f"tenant {sizes.backfill_tenant}" if sizes.backfill_tenant else "every tenant"
    m = Measurement(
        "backfill", f"Backfill fetch efficiency, {days} days daily, demo catalog ({scope})"
    )
    progress(f"backfill: {start} … {end}, {scope}, --no-patterns")
    with tempfile.TemporaryDirectory(prefix="fulcrum-bench-") as tmp:
        url = sqlite_url(Path(tmp))
        cfg = settings(url)
        engine = open_engine(url)
        source = CountingSource(DemoSource(cfg.demo_seed))
        request = backfill.BackfillRequest(
            grain=Grain.DAY, start=start, end=end, tenant=sizes.backfill_tenant, patterns=False
        )
        t0 = time.perf_counter()
        result = backfill.run(engine, source, cfg, request)
        seconds = time.perf_counter() - t0
        per_day = _rows_per_day(engine, start, end)
        engine.dispose()
    if result.failed or result.outcome != "succeeded":
        raise RuntimeError(f"backfill {result.outcome}: {result.failures[:3]}")
    in_range = sum(per_day.values())
    window = cfg.lookback[Grain.DAY][SyncType.INCREMENTAL]
    naive = _per_period_refetch(per_day, start, end, window)
    m.add(
        Figure(
            "rows_fetched_ratio",
            "rows fetched / rows in range",
            source.rows / in_range if in_range else None,
            "x",
            "<=",
            TARGET_RATIO,
            f"{source.rows:,} fetched, {in_range:,} in range",
        ),
        Figure(
            "source_queries",
            "source queries (one per series per stretch)",
            source.queries,
            "",
            note=f"planned {result.plan.estimated_queries:,}; "
            f"{len(result.plan.contexts)} contexts × {len(result.plan.periods)} periods",
        ),
        Figure(
            "per_period_refetch_ratio",
            f"for scale: re-fetching a {window}-day window per period",
            naive / in_range if in_range else None,
            "x",
        ),
        Figure("seconds", "backfill wall time", seconds, "s"),
    )
    m.details = {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "contexts": len(result.plan.contexts),
        "periods": len(result.plan.periods),
        "sync_keys": result.plan.sync_keys,
        "rows_fetched_counted_at_source": source.rows,
        "rows_fetched_reported": result.rows_fetched,
        "rows_in_range_counted": in_range,
        "rows_in_range_reported": result.rows_in_range,
        "source_queries": source.queries,
        "source_queries_reported": result.source_queries,
        "per_period_refetch_rows": naive,
        "seconds": round(seconds, 2),
    }
    return m


def _rows_per_day(engine: Any, start: date, end: date) -> dict[date, int]:
    """Stored base and dimensional day rows per date within the range."""
    from sqlalchemy import func, select

    from fulcrum_sync.store import tables as t

    counts: dict[date, int] = {}
    with engine.connect() as conn:
        for table in (t.metric_time_series, t.metric_dimensional_time_series):
            c = table.c
            query = (
                select(c.date, func.count())
                .where(c.grain == "day", c.date >= start, c.date <= end)
                .group_by(c.date)
            )
            for day, n in conn.execute(query):
                counts[day] = counts.get(day, 0) + n
    return counts


def _per_period_refetch(per_day: dict[date, int], start: date, end: date, window: int) -> int:
    """Rows fetched if every period re-fetched its own lookback window (clipped at ``start``)."""
    total = 0
    day = start
    while day <= end:
        first = max(start, day - timedelta(days=window - 1))
        total += sum(n for d, n in per_day.items() if first <= d <= day)
        day += timedelta(days=1)
    return total
