"""Upsert throughput: the tool's write path against a plain bulk insert of the same rows.

The write path is ``store.series.upsert_series`` in one transaction, for one dimensional
series of N rows that the table already holds (the common case: a re-fetched lookback
window whose rows did not change), and again with every value changed. The floor is a plain
COPY (PostgreSQL) or ``executemany`` INSERT (SQLite) of the same rows into an empty table
with the same primary key, in the same run. Ratios are floor seconds / write-path seconds,
i.e. the write path's rows/s as a fraction of the floor's; medians of interleaved repeats.
"""

from __future__ import annotations

import math
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from benchmarks.common import Figure, Measurement, Progress, Sizes, median, timed
from benchmarks.databases import pg_admin_url, pg_database, pg_version, sqlite_url

TARGET_UNCHANGED = 0.8
FLOOR_TABLE = "bench_floor"
START = date(2024, 1, 1)

Row = tuple[date, str, float]


def make_rows(n: int) -> list[Row]:
    """Return ``n`` (date, slice, value) rows: up to 500 days × as many slices as needed."""
    days = min(500, n)
    slices = math.ceil(n / days)
    rows = [
        (START + timedelta(days=d), f"slice_{s:04d}", float(1000 + (d * 7919 + s * 104729) % 9973))
        for s in range(slices)
        for d in range(days)
    ]
    return rows[:n]


def bump(rows: list[Row], by: float) -> list[Row]:
    """The same keys with every value changed."""
    return [(d, s, v + by) for d, s, v in rows]


def measure(sizes: Sizes, progress: Progress) -> Measurement:
    """Measure on PostgreSQL (when reachable) and on SQLite."""
    m = Measurement("upsert", f"Write path vs plain bulk insert, {sizes.upsert_rows:,} rows")
    rows = make_rows(sizes.upsert_rows)
    admin = pg_admin_url()
    if pg_version(admin) is None:
        m.details["postgresql"] = {"skipped": f"PostgreSQL not reachable at {admin}"}
        m.add(
            Figure(
                "pg_unchanged_ratio", "PostgreSQL: not reachable", None, "x", ">=", TARGET_UNCHANGED
            )
        )
    else:
        progress(f"upsert: PostgreSQL, {len(rows):,} rows × {sizes.upsert_repeats} repeats")
        with pg_database(admin) as url:
            m.details["postgresql"] = _measure(url, rows, sizes.upsert_repeats)
        _figures(m, "pg", "PostgreSQL", "COPY", m.details["postgresql"])
    progress(f"upsert: SQLite, {len(rows):,} rows × {sizes.upsert_repeats} repeats")
    with tempfile.TemporaryDirectory(prefix="fulcrum-bench-") as tmp:
        m.details["sqlite"] = _measure(sqlite_url(Path(tmp)), rows, sizes.upsert_repeats)
    _figures(m, "sqlite", "SQLite", "executemany", m.details["sqlite"])
    m.details["rows"] = len(rows)
    return m


def _figures(m: Measurement, key: str, name: str, floor: str, d: dict[str, Any]) -> None:
    rate = d["rows"] / d["floor_seconds"] if d["floor_seconds"] else 0.0
    m.add(
        Figure(
            f"{key}_unchanged_ratio",
            f"{name}: upsert of unchanged rows / {floor}",
            d["unchanged_ratio"],
            "x",
            ">=",
            TARGET_UNCHANGED,
            f"{d['unchanged_seconds']:.2f} s vs {d['floor_seconds']:.2f} s",
        ),
        Figure(
            f"{key}_changed_ratio",
            f"{name}: upsert of changed rows / {floor}",
            d["changed_ratio"],
            "x",
            note=f"{d['changed_seconds']:.2f} s",
        ),
        Figure(
            f"{key}_insert_ratio",
            f"{name}: upsert into an empty table / {floor}",
            d["insert_ratio"],
            "x",
            note=f"{d['insert_seconds']:.2f} s",
        ),
        Figure(f"{key}_floor_rows_per_s", f"{name}: {floor} floor", rate, "rows/s"),
    )


def _measure(url: str, rows: list[Row], repeats: int) -> dict[str, Any]:
    from fulcrum_sync.store.engine import open_engine
    from fulcrum_sync.store.series import SeriesKey, upsert_series
    from fulcrum_sync.store.tables import metric_dimensional_time_series as table

    engine = open_engine(url)
    key = SeriesKey(1, "bench_metric", "day", "bench_dim")
    postgres = engine.dialect.name == "postgresql"
    columns = [c.name for c in table.columns]
    full = [(1, "bench_metric", "day", "bench_dim", s, d, v) for d, s, v in rows]
    if not postgres:  # what SQLAlchemy's Date stores in SQLite
        full = [(*r[:5], r[5].isoformat(), r[6]) for r in full]
    _create_floor_table(engine, table.name)

    def write(batch: list[Row]) -> tuple[float, Any]:
        with timed() as t, engine.begin() as conn:
            counts = upsert_series(conn, key, batch)
        return t[0], counts

    def floor() -> float:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DELETE FROM {FLOOR_TABLE}")
        _vacuum(engine, FLOOR_TABLE)
        with timed() as t, engine.begin() as conn:
            if postgres:
                cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
                sql = f"COPY {FLOOR_TABLE} ({', '.join(columns)}) FROM STDIN"
                with cursor.copy(sql) as copy:
                    for row in full:
                        copy.write_row(row)
            else:
                marks = ", ".join("?" * len(columns))
                conn.exec_driver_sql(f"INSERT INTO {FLOOR_TABLE} VALUES ({marks})", full)
        return t[0]

    insert_seconds, counts = write(rows)
    _expect(counts, inserted=len(rows))
    _vacuum(engine, table.name)
    current = rows
    floors, unchanged, changed = [], [], []
    for rep in range(repeats):
        floors.append(floor())
        seconds, counts = write(current)
        _expect(counts, unchanged=len(rows))
        unchanged.append(seconds)
        current = bump(current, rep + 1.0)
        seconds, counts = write(current)
        _expect(counts, updated=len(rows))
        changed.append(seconds)
        _vacuum(engine, table.name)
    engine.dispose()
    f = median(floors)
    return {
        "rows": len(rows),
        "repeats": repeats,
        "floor_seconds": f,
        "unchanged_seconds": median(unchanged),
        "changed_seconds": median(changed),
        "insert_seconds": insert_seconds,
        "unchanged_ratio": f / median(unchanged),
        "changed_ratio": f / median(changed),
        "insert_ratio": f / insert_seconds,
        "samples": {
            "floor": [round(x, 3) for x in floors],
            "unchanged": [round(x, 3) for x in unchanged],
            "changed": [round(x, 3) for x in changed],
        },
        "server": pg_version(pg_admin_url()) if postgres else None,
    }


def _expect(counts: Any, *, inserted: int = 0, updated: int = 0, unchanged: int = 0) -> None:
    got = (counts.inserted, counts.updated, counts.unchanged)
    if got != (inserted, updated, unchanged):
        raise RuntimeError(
            f"write path counted (inserted, updated, unchanged) = {got}, "
            f"expected {(inserted, updated, unchanged)}"
        )


def _create_floor_table(engine: Any, like: str) -> None:
    """An empty table with the same columns and primary key as ``like``."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql(f"CREATE TABLE {FLOOR_TABLE} (LIKE {like} INCLUDING ALL)")
        else:
            ddl = conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (like,)
            ).scalar_one()
            conn.exec_driver_sql(ddl.replace(like, FLOOR_TABLE, 1))


def _vacuum(engine: Any, table: str) -> None:
    """Clear dead rows between repeats (outside the timings), as autovacuum would."""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.exec_driver_sql(f"VACUUM ANALYZE {table}")
