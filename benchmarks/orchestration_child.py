"""The child processes of the orchestration benchmark (benchmarks/orchestration.py): a sync
of N prepared contexts (FULL, then INCREMENTAL) with its statements counted and, on demand,
its profile split by phase and layer; and the floor of the run-key bookkeeping alone.

``python -m benchmarks.orchestration_child sync URL N [--profile] [--no-pool]`` or
``... floor URL N``; the answer is the last stdout line, as JSON.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import json
import pstats
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from benchmarks.catalogs import settings
from benchmarks.common import emit, pct

FIRST_PERIOD = date(2025, 9, 1)  # FULL: no earlier success
NEXT_PERIOD = date(2025, 9, 2)  # INCREMENTAL: the daily steady state


class _StatementCounter:
    """Count statements, commits and time inside the driver through engine events."""

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self.statements = 0
        self.commits = 0
        self.seconds = 0.0
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)
        event.listen(engine, "commit", self._commit)

    def reset(self) -> None:
        self.statements, self.commits, self.seconds = 0, 0, 0.0

    def _before(self, conn: Any, *_args: Any) -> None:
        conn.info["_bench_t0"] = time.perf_counter()

    def _after(self, conn: Any, *_args: Any) -> None:
        self.statements += 1
        self.seconds += time.perf_counter() - conn.info.pop("_bench_t0", time.perf_counter())

    def _commit(self, _conn: Any) -> None:
        self.commits += 1


def _sync_child(url: str, contexts: int, profile: bool, pooled: bool = True) -> dict[str, Any]:
    from benchmarks.catalogs import InstantSource
    from fulcrum_sync.domain import Grain, SyncRequest
    from fulcrum_sync.services.deps import Deps
    from fulcrum_sync.services.run import sync as sync_service
    from fulcrum_sync.store.engine import open_engine

    engine = open_engine(url, pooled=pooled)  # as ``sync --workers 1`` opens it
    counter = _StatementCounter(engine)
    cfg = settings(url)
    source = InstantSource()
    out: dict[str, Any] = {"contexts": contexts}
    if contexts == 0:  # the baseline: everything a sync process loads, no work
        from fulcrum_sync.services.contexts import discover  # noqa: F401

        engine.dispose()
        return out
    for name, period in (("full", FIRST_PERIOD), ("incremental", NEXT_PERIOD)):
        request = SyncRequest(grain=Grain.DAY, period=period, workers=1, run_patterns=False)
        profiler = cProfile.Profile() if profile and name == "incremental" else None
        counter.reset()
        cpu, wall = time.process_time(), time.perf_counter()
        if profiler is not None:
            profiler.enable()
        kinds: set[str] = set()
        # As a job in JSON log mode runs it: each context is reported as it ends and only
        # counted (the CLI keeps every result only to print a table or a --json document).
        result = sync_service.run(
            request,
            Deps(settings=cfg, engine=engine, source=source),
            keep_contexts=False,
            on_result=functools.partial(_add_sync_types, kinds),
        )
        if profiler is not None:
            profiler.disable()
            out["profile"] = _profile_split(profiler)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        statuses = result.status_counts()
        if result.context_count != contexts or set(statuses) != {"succeeded"}:
            raise RuntimeError(f"{name}: {result.context_count} contexts, statuses {statuses}")
        out[name] = {
            "seconds": round(wall, 3),
            "ms_per_context": wall * 1000 / contexts,
            "cpu_ms_per_context": cpu * 1000 / contexts,
            "statements_per_context": counter.statements / contexts,
            "commits_per_context": counter.commits / contexts,
            "sql_ms_per_context": counter.seconds * 1000 / contexts,
            "sync_types": sorted(kinds),
        }
    engine.dispose()
    return out


def _add_sync_types(kinds: set[str], res: Any) -> None:
    kinds.update(s.sync_type.value for s in res.series)


# What the profile attributes time to: (label, module suffix, function name), outermost first.
_PHASES = (
    ("claim run key", "store/runs.py", "claim"),
    # series, statuses and the key's completion: one transaction per context (issue 19)
    ("write context (series + status + complete)", "store/sync_write.py", "write_context"),
    ("read sync status", "store/sync_status.py", "read_grain_statuses"),
    ("select contexts", "services/contexts/selection.py", "select_contexts"),
    ("ensure run items", "store/runs.py", "ensure_items"),
    ("keys done before the run", "store/runs.py", "succeeded_among"),
)


def _profile_split(profiler: cProfile.Profile) -> dict[str, Any]:
    """Shares of the profiled run: per phase (cumulative) and per layer (own time)."""
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = next(
        ct
        for (file, _line, fn), (_cc, _nc, _tt, ct, _callers) in stats.items()
        if fn == "run" and file.endswith("services/run/sync.py")
    )
    phases: dict[str, float] = {}
    for label, suffix, func in _PHASES:
        phases[label] = sum(
            ct
            for (file, _line, fn), (_cc, _nc, _tt, ct, _c) in stats.items()
            if fn == func and file.endswith(suffix)
        )
    phases["other"] = max(total - sum(phases.values()), 0.0)
    layers = {
        "sqlalchemy.sql (building statements, cache keys)": 0.0,
        "sqlalchemy engine/pool/events (executing)": 0.0,
        "sqlite3 driver (execute, commit)": 0.0,
        "fulcrum_sync": 0.0,
        "other": 0.0,
    }
    for (file, _line, fn), (_cc, _nc, tt, _ct, _c) in stats.items():
        if "/sqlalchemy/sql/" in file:
            layers["sqlalchemy.sql (building statements, cache keys)"] += tt
        elif "/sqlalchemy/" in file:
            layers["sqlalchemy engine/pool/events (executing)"] += tt
        elif "sqlite3." in fn:
            layers["sqlite3 driver (execute, commit)"] += tt
        elif "/fulcrum_sync/" in file:
            layers["fulcrum_sync"] += tt
        else:
            layers["other"] += tt
    own = sum(layers.values()) or 1.0
    return {
        "profiled_seconds": round(total, 3),
        "phases_pct": {k: round(pct(v, total), 1) for k, v in phases.items()},
        "layers_pct": {k: round(pct(v, own), 1) for k, v in layers.items()},
    }


_RAW_CLAIM = (
    "UPDATE run_items SET status = 'running', lease_owner = ?, lease_expires_at = ?, "
    "run_id = ?, attempts = attempts + 1, started_at = ?, finished_at = NULL, error = NULL "
    "WHERE run_key = ? AND (status IN ('pending', 'failed', 'released') "
    "OR (status = 'running' AND lease_expires_at < ?))"
)
_RAW_COMPLETE = (
    "UPDATE run_items SET status = 'succeeded', finished_at = ?, lease_expires_at = NULL, "
    "counts = ?, error = NULL WHERE run_key = ? AND lease_owner = ? AND status = 'running'"
)


def _floor_child(url: str, keys: int) -> dict[str, Any]:
    from fulcrum_sync.store import run_records, runs
    from fulcrum_sync.store.engine import open_engine

    engine = open_engine(url)
    run_id = run_records.start_run(engine, "bench", {})
    owner = runs.new_owner(run_id)
    counts = {"rows_stored": 0, "rows_skipped": 0, "dimensions_failed": 0, "patterns": {}}

    def items(period: date) -> list[runs.RunItem]:
        return [
            runs.RunItem(f"sync:day:{period}:t::m{i}", "sync", "day", period, "t", f"m{i}")
            for i in range(keys)
        ]

    store_items, raw_items = items(FIRST_PERIOD), items(NEXT_PERIOD)
    runs.ensure_items(engine, store_items + raw_items)
    cpu, wall = time.process_time(), time.perf_counter()
    for item in store_items:
        claim = runs.claim(engine, item.run_key, owner=owner, run_id=run_id, lease_seconds=120)
        if claim is not runs.Claim.CLAIMED:
            raise RuntimeError(f"{item.run_key}: {claim}")
        runs.complete(engine, item.run_key, owner=owner, succeeded=True, counts=counts)
    store_wall, store_cpu = time.perf_counter() - wall, time.process_time() - cpu
    counts_json = json.dumps(counts)
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        cpu, wall = time.process_time(), time.perf_counter()
        for item in raw_items:
            now = datetime.now(UTC)
            lease = (now + timedelta(seconds=120)).isoformat()
            raw.execute("BEGIN IMMEDIATE")
            taken = raw.execute(
                _RAW_CLAIM, (owner, lease, run_id, now.isoformat(), item.run_key, now.isoformat())
            ).rowcount
            raw.execute("COMMIT")
            if taken != 1:
                raise RuntimeError(f"{item.run_key}: raw claim took {taken} rows")
            raw.execute("BEGIN IMMEDIATE")
            raw.execute(_RAW_COMPLETE, (now.isoformat(), counts_json, item.run_key, owner))
            raw.execute("COMMIT")
        raw_wall, raw_cpu = time.perf_counter() - wall, time.process_time() - cpu
    engine.dispose()
    return {
        "keys": keys,
        "store_ms_per_key": store_wall * 1000 / keys,
        "store_cpu_ms_per_key": store_cpu * 1000 / keys,
        "raw_ms_per_key": raw_wall * 1000 / keys,
        "raw_cpu_ms_per_key": raw_cpu * 1000 / keys,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.orchestration_child")
    sub = parser.add_subparsers(dest="mode", required=True)
    sync = sub.add_parser("sync", help="sync N prepared contexts twice (FULL, INCREMENTAL)")
    sync.add_argument("url")
    sync.add_argument("contexts", type=int)
    sync.add_argument("--profile", action="store_true")
    sync.add_argument(
        "--no-pool", dest="pooled", action="store_false", help="open the engine without a pool"
    )
    floor = sub.add_parser("floor", help="claim + complete N keys, via the store and raw SQL")
    floor.add_argument("url")
    floor.add_argument("keys", type=int)
    args = parser.parse_args(argv)
    if args.mode == "sync":
        out = _sync_child(args.url, args.contexts, args.profile, args.pooled)
    else:
        out = _floor_child(args.url, args.keys)
    emit(out)


if __name__ == "__main__":
    main()
