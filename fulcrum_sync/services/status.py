"""The ``status`` and ``runs`` reports: what ran, what is failing, how fresh the data is."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from fulcrum_sync.catalog import active_contexts as active_defs
from fulcrum_sync.config import mask_url
from fulcrum_sync.domain import (
    Freshness,
    Grain,
    InputError,
    RunDetail,
    RunOutcome,
    RunsQuery,
    StatusReport,
    decide_health,
    format_period,
    iter_periods,
    last_complete_period,
)
from fulcrum_sync.services import headlines
from fulcrum_sync.services.holes import holes
from fulcrum_sync.services.problems import context_fix, problems
from fulcrum_sync.store import backfills, progress, reports, status_reads
from fulcrum_sync.store import cache as cache_store
from fulcrum_sync.store.catalog import read_catalog


def list_runs(engine: Engine, query: RunsQuery | None = None) -> list[dict[str, Any]]:
    """Return recent invocations (filtered by ``query``) with their duration, newest first."""
    return [_with_duration(row) for row in reports.recent_runs(engine, query)]


RUN_PREFIX_MIN = 4
_HEX = set("0123456789abcdef-")


def check_run_prefix(prefix: str) -> None:
    """Refuse a run id (prefix) that cannot match one: too short, or not hex and dashes."""
    text = prefix.strip().lower()
    if len(text) < RUN_PREFIX_MIN or not set(text) <= _HEX:
        raise InputError(
            f"invalid run id {prefix!r}: expected a run id or its first {RUN_PREFIX_MIN} or more "
            "characters (hex digits and dashes, as `fulcrum-sync runs` shows them)"
        )


def show_run(engine: Engine, prefix: str) -> RunDetail:
    """Return one invocation and the run keys it worked, found by its id or an id prefix.

    Raises InputError when no run or more than one run matches.
    """
    check_run_prefix(prefix)
    text = prefix.strip().lower()
    found = reports.find_runs(engine, text)
    if not found:
        raise InputError(f"no run with an id starting {text!r}: see `fulcrum-sync runs`")
    if len(found) > 1:
        ids = ", ".join(r["run_id"][:13] for r in found)
        raise InputError(f"run id {text!r} is ambiguous: it starts {ids}; give more characters")
    run = _with_duration(found[0])
    keys = [_with_duration(k) for k in reports.run_keys_of(engine, run["run_id"])]
    return RunDetail(run=run, keys=keys)


def _with_duration(row: dict[str, Any]) -> dict[str, Any]:
    started, finished = row.get("started_at"), row.get("finished_at")
    row["duration_seconds"] = (
        round((finished - started).total_seconds(), 3) if started and finished else None
    )
    return row


def status(
    engine: Engine,
    grain: Grain | None = None,
    now: datetime | None = None,
    runs: int = 10,
    target: str = "local",
    default_endpoint: str | None = None,
) -> StatusReport:
    """Build the status report (optionally for one grain): headlines and health first.

    Freshness is the latest period whose sync succeeded per context (a context whose source
    has no rows for a period is not behind once that period's sync succeeded). Every problem
    carries the command that fixes it (services/problems.py, services/holes.py); problems
    are grouped into one headline per cause (services/headlines.py). ``target`` is the cache
    target whose loads are compared with the stored series; ``default_endpoint`` names the
    source in a headline when a stored error does not (``Cube at http://cube:4000``).

    Raises NothingToWatch (exit 2) when the database has no schema, no catalog or no run.
    """
    check_watchable(engine)
    now = now or datetime.now(UTC)
    grains = [grain] if grain else list(Grain)
    report = StatusReport(
        generated_at=now,
        runs=list_runs(engine, RunsQuery(limit=runs)),
        failing_series=reports.failing_series(engine, grain.value if grain else None),
        failing_patterns=reports.failing_patterns(engine, grain.value if grain else None),
        freshness=[],
        backfills=backfills.list_backfills(engine),
    )
    analysed = reports.latest_pattern_periods(engine)
    contexts = reports.active_contexts(engine)
    defs = active_defs(read_catalog(engine))
    for g in grains:
        expected = last_complete_period(g, now)
        fresh = Freshness(g, expected, 0, 0)
        of_grain = [c for c in contexts if c["grain"] == g.value]
        synced = progress.latest_synced(engine, g.value)
        cached = any(r.target == target for r in cache_store.read_cache_loads(engine, g.value))
        for ctx in of_grain:
            fresh.contexts += 1
            name = f"{ctx['tenant']}::{ctx['metric_id']}"
            latest = synced.get((ctx["tenant"], ctx["metric_id"]))
            if latest is not None and latest >= expected:
                fresh.up_to_date += 1
            else:
                behind = _behind(name, g, latest, expected)
                behind["command"] = context_fix(
                    g, ctx["tenant"], ctx["metric_id"], latest, expected, cache_load=cached
                )[0]
                fresh.behind.append(behind)
            done = analysed.get((ctx["tenant_id"], ctx["metric_id"], g.value))
            if done is not None and done < expected:
                fresh.patterns_behind.append(_behind(name, g, done, expected))
        report.freshness.append(fresh)
        report.problems += problems(engine, g, expected, of_grain, report.failing_series, target)
        report.problems += holes(engine, g, expected, defs)
    report.abandoned_runs = status_reads.runs_with_outcome(engine, RunOutcome.ABANDONED)
    sync_runs = reports.recent_runs(engine, RunsQuery(limit=50, command="sync"))
    report.headlines = headlines.build(report, sync_runs, default_endpoint)
    report.health = decide_health(report.headlines)
    return report


class NothingToWatchError(InputError):
    """``status`` has nothing to judge: no database, schema, catalog or run (exit 2)."""


def check_sqlite_file(url: str) -> None:
    """Refuse a SQLite URL whose file does not exist (creating it would watch nothing).

    Raises NothingToWatchError naming the path and the setting.
    """
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:
        return  # the engine's own check says what is wrong with it
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    path = Path(parsed.database or "").expanduser()
    if not path.exists():
        raise NothingToWatchError(
            f"no state database at {path.resolve()} (FULCRUM_SYNC_DATABASE_URL={mask_url(url)}): "
            "nothing "
            "to watch; point FULCRUM_SYNC_DATABASE_URL at the jobs' database (status never "
            "creates one)"
        )


def check_watchable(engine: Engine) -> None:
    """Refuse a database with no schema, no catalog loaded or no run ever recorded.

    Raises NothingToWatchError saying which, and what to do.
    """
    from fulcrum_sync.store.endpoint import database_endpoint

    where = database_endpoint(engine.url)
    if not status_reads.has_schema(engine):
        raise NothingToWatchError(
            f"{where} has no fulcrum-sync schema: nothing to watch; is FULCRUM_SYNC_DATABASE_URL "
            "the jobs' database? (`fulcrum-sync db upgrade` creates the schema)"
        )
    from fulcrum_sync.store.engine import HEAD_REVISION, current_revision

    revision = current_revision(engine)
    if revision != HEAD_REVISION:
        raise NothingToWatchError(
            f"{where} has the schema at revision {revision}; this fulcrum-sync reads "
            f"{HEAD_REVISION}: `fulcrum-sync db upgrade` (or the next job) migrates it"
        )
    counts = status_reads.counts_to_watch(engine)
    if not counts["tenants"]:
        raise NothingToWatchError(
            f"{where} has no catalog loaded: nothing to watch; `fulcrum-sync catalog load FILE` "
            "or `fulcrum-sync discover` loads it"
        )
    if not counts["runs"]:
        raise NothingToWatchError(
            f"{where} has no run recorded: nothing to watch yet; the first scheduled "
            "`fulcrum-sync sync` records one"
        )


def _behind(name: str, grain: Grain, latest: date | None, expected: date) -> dict[str, Any]:
    missing = None if latest is None else len(list(iter_periods(grain, latest, expected))) - 1
    return {
        "context": name,
        "latest": format_period(grain, latest) if latest else None,
        "expected": format_period(grain, expected),
        "periods_behind": missing,
    }
