"""What ``status`` tells an operator to do: one row per problem, with the literal command that
fixes it and whether the next scheduled run (``sync --grain G --catch-up --cache-load``)
will do it by itself.

- **behind**: the latest period whose sync succeeded is before the last complete one: the
  catch-up of the context, or a backfill of the range when it is longer than one catch-up.
- **failing**: a series whose last sync failed: the catch-up retries its period (or the
  backfill, as above).
- **patterns**: pattern keys of a synced period left failed, released or held by a dead
  process: the ``patterns`` run of that period (a key that failed twice or more needs a
  person: a scheduled run would only fail it again).
- **cache**: a context whose stored series changed since its last successful load (or
  whose last load failed, or never loaded while others were): its ``cache-load``.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

from sqlalchemy import Engine

from fulcrum_sync.domain import (
    GRAINS,
    Grain,
    Problem,
    backfill_command,
    cache_load_command,
    catch_up_command,
    format_period,
    iter_periods,
    patterns_command,
    shift_period,
    sync_command,
)
from fulcrum_sync.store import cache as cache_store
from fulcrum_sync.store import progress, versions

SCHEDULED = "sync --catch-up --cache-load"


def behind_count(grain: Grain, latest: date | None, expected: date) -> int | None:
    """Periods after ``latest`` up to ``expected`` (None: never synced)."""
    if latest is None:
        return None
    return max(len(list(iter_periods(grain, latest, expected))) - 1, 0)


def context_fix(
    grain: Grain,
    tenant: str,
    metric: str,
    latest: date | None,
    expected: date,
    *,
    cache_load: bool = False,
) -> tuple[str, bool, str]:
    """The command that brings a context up to ``expected``, and whether the schedule will.

    :param cache_load: the cache is in use at this grain: the catch-up loads it too.
    """
    bound = GRAINS[grain].catch_up_periods
    missed = behind_count(grain, latest, expected)
    catch_up = catch_up_command(grain, tenant, metric, cache_load=cache_load)
    if missed is None:
        note = f"yes: the next {SCHEDULED} syncs it (a first sync is FULL: it brings the history)"
        return catch_up, True, note
    if missed <= bound:
        # The next scheduled run targets this period or the one after: one more to take.
        by_schedule = missed + 1 <= bound
        note = (
            f"yes: the next {SCHEDULED} takes up to {bound} missed periods per context"
            if by_schedule
            else f"partly: the next {SCHEDULED} takes {bound} of its periods"
        )
        return catch_up, by_schedule, note
    start = shift_period(grain, latest or expected, 1)
    note = (
        f"no: {missed} periods behind; each {SCHEDULED} takes {bound} (oldest first) and "
        "logs an error naming this backfill"
    )
    return backfill_command(grain, start, expected, tenant, metric), False, note


def problems(
    engine: Engine,
    grain: Grain,
    expected: date,
    contexts: list[dict[str, Any]],
    failing_series: list[dict[str, Any]],
    target: str,
) -> list[Problem]:
    """Every problem of ``grain`` among the active ``contexts``, each with its fix."""
    latest = progress.latest_synced(engine, grain.value)
    loads = [r for r in cache_store.read_cache_loads(engine, grain.value) if r.target == target]
    failing: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in failing_series:
        if row["grain"] == grain.value:
            failing[(row["tenant"], row["metric_id"])].append(row)
    found: list[Problem] = []
    for ctx in sorted(contexts, key=lambda c: (c["tenant"], c["metric_id"])):
        key = (ctx["tenant"], ctx["metric_id"])
        name = f"{key[0]}::{key[1]}"
        last = latest.get(key)
        command, by_schedule, note = context_fix(
            grain, *key, last, expected, cache_load=bool(loads)
        )
        if last is None or last < expected:
            missed = behind_count(grain, last, expected)
            detail = (
                "never synced"
                if last is None
                else f"latest synced {format_period(grain, last)}, expected "
                f"{format_period(grain, expected)}: {missed} periods behind"
            )
            found.append(Problem("behind", grain, name, detail, command, by_schedule, note, last))
        for row in failing.get(key, []):
            found.append(_failing(grain, name, row, last, (command, by_schedule, note)))
    found += _patterns(engine, grain, expected, contexts, latest)
    failing_keys = {k for k, rows in failing.items() if rows}
    found += _cache(engine, grain, contexts, failing_keys, loads, target)
    return found


def _failing(
    grain: Grain,
    name: str,
    row: dict[str, Any],
    last: date | None,
    fix: tuple[str, bool, str],
) -> Problem:
    period = row.get("period")
    series = row["dimension"] or "base series"
    error = (row["error"] or "")[:200]
    detail = f"{series} failing since {row['failing_since']:%Y-%m-%d %H:%M} UTC: {error}"
    if last is not None and period is not None and period <= last:
        tenant, metric = name.split("::", 1)
        command = sync_command(grain, tenant, metric, period, force=True)
        return Problem("failing", grain, name, detail, command, False, "no: it synced later")
    return Problem("failing", grain, name, detail, *fix, period)


def _patterns(
    engine: Engine,
    grain: Grain,
    expected: date,
    contexts: list[dict[str, Any]],
    latest: dict[tuple[str, str], date],
) -> list[Problem]:
    """Unfinished pattern keys of synced periods, one row per context and period."""
    active = {(c["tenant"], c["metric_id"]) for c in contexts}
    bound = GRAINS[grain].catch_up_periods
    window_start = shift_period(grain, expected, -(bound - 2))  # the next run's last N periods
    groups: dict[tuple[str, str, date], list[dict[str, Any]]] = defaultdict(list)
    for row in progress.unfinished_patterns(engine, grain.value):
        key = (row["tenant"], row["metric_id"])
        last = latest.get(key)
        if key in active and last is not None and row["period"] <= last:
            groups[(*key, row["period"])].append(row)
    found = []
    for (tenant, metric, period), rows in sorted(groups.items()):
        statuses = sorted({r["status"] for r in rows})
        names = sorted({r["pattern"] for r in rows})
        detail = (
            f"{len(rows)} pattern keys of {format_period(grain, period)} "
            f"{'/'.join(statuses)}: {', '.join(names)}"
        )
        repeated = any(r["status"] == "failed" and (r.get("attempts") or 0) >= 2 for r in rows)
        soon = period >= window_start and not repeated
        note = (
            f"yes: the next {SCHEDULED} finishes unfinished pattern keys of its last {bound} "
            "periods"
            if soon
            else "no: it failed twice or more; a person must look at the error (--verbose)"
            if repeated
            else f"no: older than the last {bound} periods a {SCHEDULED} looks at"
        )
        command = patterns_command(grain, period, tenant, metric)
        found.append(
            Problem("patterns", grain, f"{tenant}::{metric}", detail, command, soon, note, period)
        )
    return found


def _cache(
    engine: Engine,
    grain: Grain,
    contexts: list[dict[str, Any]],
    failing: set[tuple[str, str]],
    records: list[cache_store.CacheLoadRecord],
    target: str,
) -> list[Problem]:
    """Contexts whose cache table is older than their stored series (in ``target``)."""
    loads = {(r.tenant_id, r.metric_id): r for r in records}
    if not loads:
        return []  # this target was never loaded at this grain: the cache is not in use
    current = versions.read_versions(engine, grain.value)
    found = []
    for ctx in sorted(contexts, key=lambda c: (c["tenant"], c["metric_id"])):
        version = current.get((ctx["tenant_id"], ctx["metric_id"], grain.value))
        record = loads.get((ctx["tenant_id"], ctx["metric_id"]))
        if version is None and record is None:
            continue  # nothing stored, nothing loaded
        if record is None:
            detail = f"never loaded into {target}"
        elif record.status == "failed":
            detail = f"its last load into {target} failed: {record.error}"
        elif record.data_version != version:
            detail = (
                f"stored series changed since its load of {record.loaded_at:%Y-%m-%d %H:%M} UTC "
                f"(data version {record.data_version} -> {version})"
            )
        else:
            continue
        key = (ctx["tenant"], ctx["metric_id"])
        by_schedule = key not in failing
        note = (
            f"yes: the next {SCHEDULED} loads each context whose series changed"
            if by_schedule
            else "no: its sync is failing, and a failing context is not loaded"
        )
        command = cache_load_command(grain, *key)
        name = f"{key[0]}::{key[1]}"
        found.append(Problem("cache", grain, name, detail, command, by_schedule, note))
    return found
