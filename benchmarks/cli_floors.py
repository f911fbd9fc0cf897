"""Floors for the CLI sync figures: the SQL of an incremental sync with nothing around it.

Run in a child process against a database the CLI already synced:

- ``sqlite URL N PERIOD``: per context, ONE transaction on the raw ``sqlite3`` connection
  holding the statements an incremental sync of the context needs at the least: claim its
  run key, read its sync statuses, upsert the base series and both dimensions' lookback
  windows (``executemany`` of ``INSERT … ON CONFLICT DO UPDATE … WHERE value IS NOT``),
  upsert the three status rows, complete the key. No SQLAlchemy, no logging, no result.
- ``copy URL N PERIOD``: per context, one transaction that COPYs the same rows into empty
  tables with the same primary keys (PostgreSQL): the bulk-load floor.

The rows come from the demo source for the same catalog and window, generated before the
clock starts. Prints one JSON line: CPU and wall milliseconds per context, statements and
rows per context.

Run by hand: ``python -m benchmarks.cli_floors sqlite sqlite:///state.db 1000 2025-12-05``.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from benchmarks.common import emit

_CLAIM = (
    "UPDATE run_items SET status = 'running', lease_owner = ?, lease_expires_at = ?, "
    "run_id = ?, attempts = attempts + 1, started_at = ?, finished_at = NULL, error = NULL "
    "WHERE run_key = ? AND status IN ('pending', 'failed', 'released')"
)
_STATUSES = (
    "SELECT dimension, status, last_success_at, last_success_hash, failing_since "
    "FROM metric_sync_status WHERE tenant_id = ? AND metric_id = ? AND grain = ?"
)
_UPSERT = (
    "INSERT INTO {table} ({cols}) VALUES ({marks}) ON CONFLICT ({keys}) "
    "DO UPDATE SET value = excluded.value WHERE {table}.value IS NOT excluded.value"
)
_STATUS = (
    "INSERT INTO metric_sync_status (tenant_id, metric_id, grain, dimension, status, "
    "sync_type, period, window_start, window_end, definition_hash, last_success_at, "
    "last_success_hash, last_attempt_at, rows_fetched, rows_stored, rows_skipped, run_id) "
    "VALUES (?, ?, ?, ?, 'succeeded', 'INCREMENTAL', ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?) "
    "ON CONFLICT (tenant_id, metric_id, grain, dimension) DO UPDATE SET "
    "status = excluded.status, period = excluded.period, last_attempt_at = "
    "excluded.last_attempt_at, rows_fetched = excluded.rows_fetched, rows_stored = "
    "excluded.rows_stored WHERE metric_sync_status.period <= excluded.period"
)
_COMPLETE = (
    "UPDATE run_items SET status = 'succeeded', finished_at = ?, lease_expires_at = NULL, "
    "counts = ?, error = NULL WHERE run_key = ? AND lease_owner = ? AND status = 'running'"
)
BASE_COLS = ("tenant_id", "metric_id", "grain", "date", "value")
DIM_COLS = ("tenant_id", "metric_id", "grain", "dimension_name", "dimension_slice", "date", "value")


SOURCE_CPU: dict[str, float] = {}  # the CPU seconds of _contexts_rows' fetch loop


def _contexts_rows(url: str, n: int, period: date) -> list[tuple[Any, list[list[tuple[Any, ...]]]]]:
    """Each context with the rows of its series (base first), as the store writes them.

    The CPU of fetching and sanitizing them (the demo source, numpy's import included) is
    kept in ``SOURCE_CPU["seconds"]``: a sync pays it on top of the SQL floor."""
    from fulcrum_sync.catalog import active_contexts
    from fulcrum_sync.domain import Grain, SyncType, compute_window
    from fulcrum_sync.services.run.sync_context import sanitize
    from fulcrum_sync.sources import DemoSource
    from fulcrum_sync.sources.base import FetchRequest
    from fulcrum_sync.store.catalog import read_catalog
    from fulcrum_sync.store.engine import open_engine

    engine = open_engine(url)
    contexts = active_contexts(read_catalog(engine), Grain.DAY)[:n]
    engine.dispose()
    source = DemoSource(42)
    window = compute_window(Grain.DAY, period, SyncType.INCREMENTAL, date(2025, 7, 1))
    out = []
    started = time.process_time()
    for ctx in contexts:
        series = []
        for dim in (None, *ctx.metric.dimensions):
            fetched = source.fetch_series(
                FetchRequest(
                    ctx.tenant.tenant_id, ctx.tenant.identifier, ctx.metric, Grain.DAY, window, dim
                )
            )
            clean, _ = sanitize(fetched, dimensional=dim is not None)
            head = (ctx.tenant.tenant_id, ctx.metric.metric_id, "day")
            if dim is None:
                series.append([(*head, d.isoformat(), v) for d, v in clean])
            else:
                series.append([(*head, dim.dimension_id, s, d.isoformat(), v) for d, s, v in clean])
        out.append((ctx, series))
    SOURCE_CPU["seconds"] = time.process_time() - started
    return out


def sqlite_floor(url: str, n: int, period: date) -> dict[str, Any]:
    import sqlite3

    work = _contexts_rows(url, n, period)
    con = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    now = datetime.now(UTC).isoformat()
    keys = [f"floor:day:{period}:{ctx.context}" for ctx, _ in work]
    con.execute("BEGIN IMMEDIATE")
    con.executemany(
        "INSERT OR IGNORE INTO run_items (run_key, kind, grain, period, tenant, metric_id, "
        "pattern, status, attempts, created_at) VALUES (?, 'sync', 'day', ?, ?, ?, '', "
        "'pending', 0, ?)",
        [
            (k, period.isoformat(), c.tenant.identifier, c.metric.metric_id, now)
            for k, (c, _) in zip(keys, work, strict=True)
        ],
    )
    con.execute("COMMIT")
    upsert_base = _UPSERT.format(
        table="metric_time_series",
        cols=", ".join(BASE_COLS),
        marks=", ".join("?" * 5),
        keys=", ".join(BASE_COLS[:-1]),
    )
    upsert_dim = _UPSERT.format(
        table="metric_dimensional_time_series",
        cols=", ".join(DIM_COLS),
        marks=", ".join("?" * 7),
        keys=", ".join(DIM_COLS[:-1]),
    )
    window_start = (period - timedelta(days=89)).isoformat()
    rows = statements = 0
    cpu, wall = time.process_time(), time.perf_counter()
    for key, (ctx, series) in zip(keys, work, strict=True):
        ids = (ctx.tenant.tenant_id, ctx.metric.metric_id, "day")
        stamp = datetime.now(UTC).isoformat()
        con.execute("BEGIN IMMEDIATE")
        con.execute(_CLAIM, ("floor", stamp, "floor-run", stamp, key))
        con.execute(_STATUSES, ids).fetchall()
        for i, values in enumerate(series):
            con.executemany(upsert_base if i == 0 else upsert_dim, values)
            rows += len(values)
        dims = ["", *(d.dimension_id for d in ctx.metric.dimensions)]
        con.executemany(
            _STATUS,
            [
                (
                    *ids,
                    d,
                    period.isoformat(),
                    window_start,
                    period.isoformat(),
                    "h",
                    stamp,
                    "h",
                    stamp,
                    len(v),
                    0,
                    "floor-run",
                )
                for d, v in zip(dims, series, strict=True)
            ],
        )
        con.execute(_COMPLETE, (stamp, '{"rows_stored": 0}', key, "floor"))
        con.execute("COMMIT")
        statements += 5 + len(series)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    con.close()
    answer = _answer("sqlite bare loop", len(work), cpu, wall, statements, rows)
    answer["source_cpu_ms_per_context"] = SOURCE_CPU["seconds"] * 1000 / max(len(work), 1)
    return answer


def copy_floor(url: str, n: int, period: date) -> dict[str, Any]:
    import psycopg

    work = _contexts_rows(url, n, period)
    dsn, _, query = url.replace("+psycopg", "").partition("?")
    options = query.split("options=", 1)[1].replace("%3D", "=") if "options=" in query else ""
    with psycopg.connect(dsn, options=options) as conn:
        for name, like in (
            ("floor_base", "metric_time_series"),
            ("floor_dim", "metric_dimensional_time_series"),
        ):
            conn.execute(f"DROP TABLE IF EXISTS {name}")
            conn.execute(f"CREATE TABLE {name} (LIKE {like} INCLUDING ALL)")
        conn.commit()
        rows = 0
        cpu, wall = time.process_time(), time.perf_counter()
        for _ctx, series in work:
            with conn.cursor() as cur:
                for i, values in enumerate(series):
                    table, cols = ("floor_base", BASE_COLS) if i == 0 else ("floor_dim", DIM_COLS)
                    with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
                        for row in values:
                            copy.write_row(row)
                    rows += len(values)
            conn.commit()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return _answer("COPY into empty tables", len(work), cpu, wall, len(work) * 3, rows)


def _answer(
    what: str, n: int, cpu: float, wall: float, statements: int, rows: int
) -> dict[str, Any]:
    return {
        "floor": what,
        "contexts": n,
        "cpu_ms_per_context": cpu * 1000 / max(n, 1),
        "wall_ms_per_context": wall * 1000 / max(n, 1),
        "statements_per_context": statements / max(n, 1),
        "rows_per_context": rows / max(n, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cli_floors")
    parser.add_argument("kind", choices=("sqlite", "copy"))
    parser.add_argument("url")
    parser.add_argument("contexts", type=int)
    parser.add_argument("period", type=date.fromisoformat)
    args = parser.parse_args(argv)
    floor = sqlite_floor if args.kind == "sqlite" else copy_floor
    emit(floor(args.url, args.contexts, args.period))


if __name__ == "__main__":
    main()
