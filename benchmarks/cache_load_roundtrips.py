"""Snowflake cache loads: statements and round trips per table, and the wall of 1,000 tables
at 150 ms per round trip, before (one table at a time) and after (one batch), side by side.

Both run on fakesnow through :mod:`benchmarks.snowflake_counting`, which counts every
statement and every round trip a real connector would make (a multi-statement request is
one; a ``PUT`` is two: its query and the upload). The latency is **not slept**: the wall at
150 ms per round trip is computed as ``measured wall + round trips x 0.150 s``, where the
measured wall is this process's time on fakesnow (sleeping 13,000 x 150 ms would take half
an hour per run). The "before" path is the sink as it was (per table: CREATE TABLE IF NOT
EXISTS, CREATE TEMPORARY TABLE, write_pandas, BEGIN, DELETE, INSERT ... SELECT, COMMIT,
DROP, SELECT COUNT(*), SELECT BYTES), with write_pandas's own statements on a real account
(CREATE TEMPORARY STAGE, PUT, COPY INTO) sent as SQL, so they are counted too.

Usage::

    python benchmarks/cache_load_roundtrips.py                 # 1,000 tables
    python benchmarks/cache_load_roundtrips.py --tables 100 --latency-ms 150
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd

from benchmarks.snowflake_counting import FakeAccount

PASSWORD = "bench-unique-password"
LOADED_AT = datetime(2025, 7, 3, tzinfo=UTC)
COLUMNS = (
    '"DATE" DATE NOT NULL, "DIMENSION_NAME" VARCHAR, "DIMENSION_SLICE" VARCHAR, '
    '"VALUE" FLOAT NOT NULL, "GRAIN" VARCHAR NOT NULL, "LOADED_AT" TIMESTAMP_NTZ NOT NULL'
)
STAGE_COLUMNS = '"DATE" DATE, "DIMENSION_NAME" VARCHAR, "DIMENSION_SLICE" VARCHAR, "VALUE" FLOAT'
FRAME = '"DATE", "DIMENSION_NAME", "DIMENSION_SLICE", "VALUE"'


def frame(seed: int, days: int) -> pd.DataFrame:
    """A context's cache rows: the base series and two slices of one dimension."""
    start = date(2025, 7, 1)
    records: list[tuple[Any, ...]] = []
    for i in range(days):
        day = start + timedelta(days=i)
        records.append((day, None, None, seed + i * 1.5))
        records += [(day, "region", s, seed / 3 + i) for s in ("eu", "us")]
    return pd.DataFrame.from_records(
        records, columns=["date", "dimension_name", "dimension_slice", "value"]
    )


def load_before(account: FakeAccount, frames: dict[str, pd.DataFrame]) -> None:
    """The sink as it was: each table on its own, 12 statements (9 + write_pandas's 3)."""
    conn = account.connect(
        account="bench", user="U", password=PASSWORD, database="FULCRUM", schema="CACHE"
    )
    cur = conn.cursor()
    folder = tempfile.mkdtemp()
    for name, data in frames.items():
        target, stage = f'"FULCRUM"."CACHE"."{name}"', f'"{name}__STAGE"'
        cur.execute(f"CREATE TABLE IF NOT EXISTS {target} ({COLUMNS})")
        cur.execute(f"CREATE OR REPLACE TEMPORARY TABLE {stage} ({STAGE_COLUMNS})")
        # write_pandas: a temporary stage, the file's PUT, the COPY (its DDL commits first)
        path = os.path.join(folder, f"{name}.csv")
        data.to_csv(path, header=False, index=False, na_rep="\\N")
        cur.execute(f'CREATE TEMPORARY STAGE IF NOT EXISTS "{name}_WP"')
        cur.execute(f"PUT 'file://{path}' @\"{name}_WP\" AUTO_COMPRESS=TRUE OVERWRITE=TRUE")
        cur.execute(
            f'COPY INTO {stage} FROM @"{name}_WP" FILE_FORMAT = (TYPE = CSV '
            "NULL_IF = ('\\\\N')) PURGE = TRUE"
        )
        cur.execute("BEGIN")
        cur.execute(f"DELETE FROM {target}")
        cur.execute(
            f'INSERT INTO {target} ({FRAME}, "GRAIN", "LOADED_AT") '
            f"SELECT {FRAME}, 'day', TO_TIMESTAMP_NTZ('2025-07-03 00:00:00') FROM {stage}"
        )
        cur.execute("COMMIT")
        cur.execute(f"DROP TABLE IF EXISTS {stage}")
        cur.execute(f"SELECT COUNT(*) FROM {target}")
        cur.execute(
            'SELECT BYTES FROM "FULCRUM".INFORMATION_SCHEMA.TABLES '
            f"WHERE TABLE_SCHEMA = 'CACHE' AND TABLE_NAME = '{name}'"
        )
    conn.close()


def load_after(account: FakeAccount, frames: dict[str, pd.DataFrame]) -> None:
    """The sink as it is: one batch for the destination (sinks/snowflake/batch.py)."""
    from fulcrum_sync.domain import Grain
    from fulcrum_sync.sinks.snowflake import SnowflakeConfig, SnowflakeSink

    config = SnowflakeConfig(
        account="bench", user="U", database="FULCRUM", schema="CACHE", password=PASSWORD
    )
    sink = SnowflakeSink(config, connect=account.connect)
    sink.open()
    batch = sink.batch()
    try:
        for name, data in frames.items():
            table = sink.table_for("bench", name.lower(), Grain.DAY)
            batch.add(table, data, Grain.DAY, LOADED_AT)
        outcomes = batch.load()
    finally:
        batch.close()
        sink.close()
    failed = [k for k, v in outcomes.items() if isinstance(v, Exception)]
    if failed:
        raise RuntimeError(f"{len(failed)} tables failed, e.g. {outcomes[failed[0]]}")


def measure(tables: int, days: int, latency: float) -> dict[str, Any]:
    """Load ``tables`` changed tables both ways twice (first load, then a reload)."""
    frames = {f"CACHE_BENCH_M{i}_DAY": frame(i, days) for i in range(tables)}
    out: dict[str, Any] = {
        "tables": tables,
        "rows_per_table": 3 * days,
        "latency_ms": latency * 1000,
    }
    for label, load in (("before", load_before), ("after", load_after)):
        account = FakeAccount(PASSWORD)
        load(account, frames)  # the first load creates the tables
        account.counter.reset()
        started = time.perf_counter()
        cpu = time.process_time()
        load(account, frames)  # what a scheduled reload of changed tables costs
        wall = time.perf_counter() - started
        counter = account.counter
        out[label] = {
            "statements": counter.statements,
            "round_trips": counter.round_trips,
            "statements_per_table": round(counter.statements / tables, 3),
            "round_trips_per_table": round(counter.round_trips / tables, 3),
            "measured_wall_s": round(wall, 2),
            "measured_cpu_s": round(time.process_time() - cpu, 2),
            "wall_at_latency_s": round(wall + counter.round_trips * latency, 1),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=1000)
    parser.add_argument("--days", type=int, default=90, help="days per table (3 rows a day)")
    parser.add_argument("--latency-ms", type=float, default=150.0)
    args = parser.parse_args(argv)
    result = measure(args.tables, args.days, args.latency_ms / 1000)
    print(json.dumps(result, indent=2))
    for label in ("before", "after"):
        r = result[label]
        print(
            f"{label:>6}: {r['statements']:>6} statements ({r['statements_per_table']}/table), "
            f"{r['round_trips']:>6} round trips ({r['round_trips_per_table']}/table), "
            f"measured {r['measured_wall_s']} s, at {args.latency_ms:.0f} ms a round trip "
            f"{r['wall_at_latency_s']} s",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
