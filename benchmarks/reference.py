"""A fixed workload that tells how fast this machine is right now.

The CPU targets are absolute milliseconds on this machine, but the machine is a shared VM:
the same code and data have measured up to twice as slow from one hour to the next with
nothing else running here (the host's other guests). Every run therefore times this
workload, which never changes (pure Python, SQLite in memory, JSON: what a sync spends
its CPU on), before each benchmark and at the end; CPU figures of two reports compare in
proportion to their reference times, and a benchmark's floor (measured in the same run)
stays the sturdier yardstick."""

from __future__ import annotations

import json
import sqlite3
import statistics
import time

REPEATS = 3


def _workload() -> int:
    total = 0
    for i in range(1_000_000):
        total += i % 7
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, d TEXT, v REAL)")
    rows = [(i, f"2025-{i % 12 + 1:02d}-01", i * 0.5) for i in range(50_000)]
    db.executemany("INSERT INTO t VALUES (?, ?, ?)", rows)
    db.executemany("INSERT OR REPLACE INTO t VALUES (?, ?, ?)", rows)
    total += db.execute("SELECT COUNT(*) FROM t").fetchone()[0]
    db.close()
    total += len(json.dumps([{"k": i, "v": i / 3} for i in range(50_000)]))
    return total


def measure_ms() -> dict[str, float]:
    """CPU milliseconds of the workload: the fastest and the median of a few repeats."""
    times = []
    for _ in range(REPEATS):
        start = time.process_time()
        _workload()
        times.append((time.process_time() - start) * 1000)
    return {"min": round(min(times), 1), "median": round(statistics.median(times), 1)}


if __name__ == "__main__":
    print(json.dumps(measure_ms()))
