"""The scheduled ``sync --cache-load`` of N changed tables on fakesnow with a latency slept on
every round trip: statements, round trips and wall, per context (before) and batched (after),
side by side in one run.

Set-up (no latency): a SQLite state database with N day contexts
(:func:`benchmarks.catalogs.synthetic_catalog`, demo source), synced for ``FIRST`` with
``--cache-load`` into one fake account, so every cache table exists. Each variant then runs
on its own copy of that state: the real sync run (:class:`SyncRun`, in process) of the next
day with ``--cache-load`` and ``--no-patterns``, so every series changed and every table is
reloaded, with the latency **injected**: the account's counting connection
(``benchmarks/snowflake_counting.py``) sleeps ``--latency-ms`` before each round trip a real
connector makes (the login, each ``execute``, a multi-statement request as one, a ``PUT``'s
upload as a second) and only then lets fakesnow run it.

* **after**: ``sync --cache-load`` as it is: the queued contexts load together at the end of
  the run, each destination's in one batch (services/cache/load.py); all N tables.
* **per context**: the same code with a batch of one context (``SyncRun(cache_batch=1)``):
  what ``sync --cache-load`` did before, each context a batch of one on the run's connection
  (existence query, setup, PUT, COPY, BEGIN + INSERT OVERWRITE + COMMIT, size query).
* **old sink**: the sink before issue 26, replayed on the same tables (per table: CREATE
  TABLE IF NOT EXISTS, CREATE TEMPORARY TABLE, write_pandas's stage, PUT and COPY, BEGIN,
  DELETE, INSERT ... SELECT, COMMIT, DROP, SELECT COUNT(*), SELECT BYTES).

The two "before" variants load a sample of ``--sample`` tables (one tenant's): at 150 ms
they would take 20-40 minutes for 1,000. Their wall for N is extrapolated from the sample
(per table x N), and says so.

Usage::

    python -W ignore benchmarks/cache_load_roundtrips.py                 # 1,000 tables, 20
    python -W ignore benchmarks/cache_load_roundtrips.py --tables 100 --sample 10 --latency-ms 150
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd

from benchmarks.catalogs import prepare_state, settings, synthetic_catalog
from benchmarks.databases import sqlite_url
from benchmarks.snowflake_counting import FakeAccount

PASSWORD = "bench-unique-password"
FIRST, NEXT = date(2025, 9, 29), date(2025, 9, 30)
COLUMNS = (
    '"DATE" DATE NOT NULL, "DIMENSION_NAME" VARCHAR, "DIMENSION_SLICE" VARCHAR, '
    '"VALUE" FLOAT NOT NULL, "GRAIN" VARCHAR NOT NULL, "LOADED_AT" TIMESTAMP_NTZ NOT NULL'
)
STAGE_COLUMNS = '"DATE" DATE, "DIMENSION_NAME" VARCHAR, "DIMENSION_SLICE" VARCHAR, "VALUE" FLOAT'
FRAME = '"DATE", "DIMENSION_NAME", "DIMENSION_SLICE", "VALUE"'


class TimedLoads:
    """The sync's cache loader, timing each batch it loads (the rest is the sync itself)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seconds = 0.0
        self.batches = 0

    def prepare(self, contexts: list[Any]) -> None:
        self.inner.prepare(contexts)

    def load_many(self, contexts: list[Any], stop: Any = None, fields: Any = None) -> Any:
        started = time.perf_counter()
        try:
            return self.inner.load_many(contexts, stop, fields)
        finally:
            self.seconds += time.perf_counter() - started
            self.batches += 1

    def close(self) -> None:
        self.inner.close()


def _settings(url: str) -> Any:
    return settings(
        url,
        cache_target="snowflake",
        snowflake_account="bench",
        snowflake_user="U",
        snowflake_password=PASSWORD,
        workers=1,
    )


def sync_cache_load(
    url: str, account: FakeAccount, period: date, *, tenant: str | None, cache_batch: int
) -> dict[str, Any]:
    """Run ``sync --grain day --period P --no-patterns --cache-load`` in process; return its
    wall, its cache load's wall and how many tables loaded."""
    from fulcrum_sync.domain import Grain, SyncRequest
    from fulcrum_sync.services.cache.load import CacheLoader
    from fulcrum_sync.services.deps import Deps
    from fulcrum_sync.services.patterns.step import NO_PATTERNS
    from fulcrum_sync.services.run.sync_run import SyncRun

    deps = Deps(settings=_settings(url), snowflake_connect=account.connect)
    try:
        engine = deps.get_engine(pooled=True)
        request = SyncRequest(Grain.DAY, period, tenant=tenant, run_patterns=False, cache_load=True)
        loads = TimedLoads(CacheLoader(engine, deps.get_settings(), deps.get_sinks(), Grain.DAY))
        run = SyncRun(
            engine,
            deps.get_source(),
            deps.get_settings(),
            request,
            patterns_step=NO_PATTERNS,
            loader=loads,
            cache_batch=cache_batch,
        )
        started = time.perf_counter()
        result = run.execute()
        wall = time.perf_counter() - started
    finally:
        deps.close()
    statuses = [c.cache.status if c.cache else None for c in result.contexts]
    if result.outcome != "succeeded" or set(statuses) != {"succeeded"}:
        raise RuntimeError(f"sync {period} {result.outcome}: cache loads {statuses[:5]} ...")
    return {
        "tables": len(statuses),
        "run_wall_s": wall,
        "load_wall_s": loads.seconds,
        "batches": loads.batches,
    }


def _frame_name(context: str) -> str:
    tenant, metric = context.split("::")
    return f"CACHE_{tenant.upper()}_{metric.upper()}_DAY"


def old_sink(url: str, account: FakeAccount, contexts: list[tuple[int, str, str]]) -> float:
    """The sink before issue 26, each table on its own (12 statements, 13 round trips);
    return the wall of loading ``contexts`` ((tenant id, tenant, metric)) from the state."""
    from fulcrum_sync.store.cache import read_cache_frame
    from fulcrum_sync.store.engine import open_engine

    engine = open_engine(url)
    try:
        frames = {
            _frame_name(f"{tenant}::{metric}"): read_cache_frame(engine, tid, metric, "day")
            for tid, tenant, metric in contexts
        }
    finally:
        engine.dispose()
    started = time.perf_counter()
    _replay_old_sink(account, frames)
    return time.perf_counter() - started


def _replay_old_sink(account: FakeAccount, frames: dict[str, pd.DataFrame]) -> None:
    conn = account.connect(
        account="bench", user="U", password=PASSWORD, database="FULCRUM", schema="CACHE"
    )
    cur = conn.cursor()
    folder = tempfile.mkdtemp()
    try:
        for name, data in frames.items():
            target, stage = f'"FULCRUM"."CACHE"."{name}"', f'"{name}__STAGE"'
            cur.execute(f"CREATE TABLE IF NOT EXISTS {target} ({COLUMNS})")
            cur.execute(f"CREATE OR REPLACE TEMPORARY TABLE {stage} ({STAGE_COLUMNS})")
            # write_pandas: a temporary stage, the file's PUT, the COPY
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
                f"SELECT {FRAME}, 'day', TO_TIMESTAMP_NTZ('2025-09-30 00:00:00') FROM {stage}"
            )
            cur.execute("COMMIT")
            cur.execute(f"DROP TABLE IF EXISTS {stage}")
            cur.execute(f"SELECT COUNT(*) FROM {target}")
            cur.execute(
                'SELECT BYTES FROM "FULCRUM".INFORMATION_SCHEMA.TABLES '
                f"WHERE TABLE_SCHEMA = 'CACHE' AND TABLE_NAME = '{name}'"
            )
    finally:
        conn.close()
        shutil.rmtree(folder, ignore_errors=True)


def _rows(url: str, context: tuple[int, str, str]) -> int:
    """The rows of one context's cache table (base and slices, every day stored)."""
    from fulcrum_sync.store.cache import read_cache_frame
    from fulcrum_sync.store.engine import open_engine

    engine = open_engine(url)
    try:
        return len(read_cache_frame(engine, context[0], context[2], "day"))
    finally:
        engine.dispose()


def tables_equal_state(url: str, account: FakeAccount, catalog: Any) -> int:
    """Check every context's table holds exactly its stored rows (uncounted reads); return
    how many tables were compared. Raises RuntimeError at the first that differs."""
    from fulcrum_sync.store.cache import read_cache_frame
    from fulcrum_sync.store.engine import open_engine

    engine = open_engine(url)
    compared = 0
    try:
        for tenant in catalog.tenants:
            for metric in tenant.metrics:
                frame = read_cache_frame(engine, tenant.tenant_id, metric.metric_id, "day")
                clean = frame.astype(object).where(frame.notna(), None)
                want = sorted((tuple(r) for r in clean.itertuples(index=False)), key=repr)
                name = _frame_name(f"{tenant.identifier}::{metric.metric_id}")
                got = account.query(f'SELECT {FRAME} FROM "FULCRUM"."CACHE"."{name}"')
                if sorted(got, key=repr) != want or not want:
                    raise RuntimeError(f"{name} differs from the state ({len(got)} rows)")
                compared += 1
    finally:
        engine.dispose()
    return compared


def _variant(
    account: FakeAccount, latency: float, tables: int, load: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """Run ``load`` with the latency slept; its counts per table and walls."""
    counter = account.counter
    counter.reset()
    counter.latency, counter.sleep = latency, True
    cpu = time.process_time()
    try:
        out = load()
    finally:
        counter.latency, counter.sleep = 0.0, False
    loaded = out.pop("tables", tables)
    if loaded != tables:
        raise RuntimeError(f"{loaded} tables loaded, {tables} expected")
    load_wall = out["load_wall_s"]
    return {
        "tables": tables,
        "statements": counter.statements,
        "round_trips": counter.round_trips,
        "statements_per_table": round(counter.statements / tables, 3),
        "round_trips_per_table": round(counter.round_trips / tables, 3),
        "slept_s": round(counter.waited, 2),
        "cpu_s": round(time.process_time() - cpu, 2),
        "load_wall_per_table_s": round(load_wall / tables, 3),
        **{k: round(v, 2) if isinstance(v, float) else v for k, v in out.items()},
    }


def measure(
    tables: int, sample: int, latency: float, dimensions: int, folder: Path
) -> dict[str, Any]:
    """Set up N synced and loaded contexts, then reload them each way with the latency."""
    base = folder / "base.db"
    url = sqlite_url(folder, "base.db")
    catalog = synthetic_catalog(tables, dimensions=dimensions, metrics_per_tenant=sample)
    prepare_state(url, catalog)
    account = FakeAccount(PASSWORD)
    started = time.perf_counter()
    warm = sync_cache_load(url, account, FIRST, tenant=None, cache_batch=tables)  # no latency
    setup_s = time.perf_counter() - started
    first = catalog.tenants[0]
    picked = [(first.tenant_id, first.identifier, m.metric_id) for m in first.metrics]
    out: dict[str, Any] = {
        "tables": tables,
        "sample": len(picked),
        "latency_ms": latency * 1000,
        "dimensions": dimensions,
        "set_up_s": round(setup_s, 1),
        "set_up_tables": warm["tables"],
    }

    def copy(name: str) -> str:
        shutil.copy(base, folder / name)
        return sqlite_url(folder, name)

    after_url, context_url = copy("after.db"), copy("context.db")
    out["after"] = _variant(
        account,
        latency,
        tables,
        lambda: sync_cache_load(after_url, account, NEXT, tenant=None, cache_batch=1_000),
    )
    out["after"]["tables_equal_state"] = tables_equal_state(after_url, account, catalog)
    out["per_context"] = _variant(
        account,
        latency,
        len(picked),
        lambda: sync_cache_load(context_url, account, NEXT, tenant=first.identifier, cache_batch=1),
    )
    out["rows_per_table"] = _rows(after_url, picked[0])
    out["old_sink"] = _variant(
        account,
        latency,
        len(picked),
        lambda: {"load_wall_s": old_sink(after_url, account, picked)},  # NEXT's rows
    )
    for key in ("per_context", "old_sink"):
        per = out[key]["load_wall_per_table_s"]
        out[key][f"load_wall_at_{tables}_extrapolated_s"] = round(per * tables, 1)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=1000)
    parser.add_argument("--sample", type=int, default=20, help="tables of the before variants")
    parser.add_argument("--latency-ms", type=float, default=150.0)
    parser.add_argument("--dimensions", type=int, default=2, help="dimensions per metric")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cache-roundtrips-") as folder:
        result = measure(
            args.tables, args.sample, args.latency_ms / 1000, args.dimensions, Path(folder)
        )
    print(json.dumps(result, indent=2))
    for label in ("after", "per_context", "old_sink"):
        r = result[label]
        extra = r.get(f"load_wall_at_{args.tables}_extrapolated_s")
        print(
            f"{label:>11}: {r['tables']} tables, {r['statements_per_table']} statements and "
            f"{r['round_trips_per_table']} round trips a table, load wall {r['load_wall_s']} s"
            + (f" (x{args.tables}: ~{extra} s)" if extra is not None else ""),
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
