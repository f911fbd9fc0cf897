"""Holes: pattern results a synced context-period should have and does not (SPEC §5).

A context-period is done only when every key it should have is done. For each recent
period whose sync key succeeded, the expected pattern runs (each enabled pattern that runs
at the grain; dimension patterns once per dimension) are compared with the stored pattern
results:

- a result missing while its key is ``succeeded`` or was never created is a **hole**: no
  scheduled run will fill it (a succeeded key is skipped without ``--force``): a person
  runs the ``patterns ... --force`` it names;
- a result missing while its key is ``pending`` is unfinished work (kind ``patterns``): the
  next scheduled run does it when the period is among the ones it looks at.

Keys ``failed``, ``released`` or ``running`` are left to ``services/operate/problems.py``.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from sqlalchemy import Engine

from fulcrum_sync.catalog import ContextDef
from fulcrum_sync.domain import (
    GRAINS,
    Grain,
    KeyStatus,
    Problem,
    format_period,
    patterns_command,
    shift_period,
)
from fulcrum_sync.services.jobs.keys import pattern_jobs
from fulcrum_sync.store import status_reads
from fulcrum_sync.store.tables import NO_PATTERN_DIMENSION

SCHEDULED = "sync --catch-up --cache-load"
_ELSEWHERE = {KeyStatus.FAILED, KeyStatus.RELEASED, KeyStatus.RUNNING}


def holes(engine: Engine, grain: Grain, expected: date, defs: list[ContextDef]) -> list[Problem]:
    """Missing pattern results of the last ``2 x catch-up bound`` periods of ``grain`` whose
    sync succeeded: one problem per context-period, with the command that fills it."""
    bound = GRAINS[grain].catch_up_periods
    start = shift_period(grain, expected, -(2 * bound - 1))
    window_start = shift_period(grain, expected, -(bound - 2))  # what the next run looks at
    by_name = {(d.tenant.identifier, d.metric.metric_id): d for d in defs if d.grain is grain}
    if not by_name or not any(d.metric.patterns for d in by_name.values()):
        return []
    synced = status_reads.synced_periods(engine, grain.value, start)
    statuses = status_reads.pattern_key_statuses(engine, grain.value, start)
    results = status_reads.pattern_result_keys(engine, grain.value, start)
    missing: dict[tuple[str, str, date], list[str]] = defaultdict(list)
    pending: dict[tuple[str, str, date], list[str]] = defaultdict(list)
    for tenant, metric, period in synced:
        ctx = by_name.get((tenant, metric))
        if ctx is None:
            continue
        for spec, dim, item in pattern_jobs(ctx, period):
            key = (ctx.tenant.tenant_id, metric, spec.name, period, dim or NO_PATTERN_DIMENSION)
            status = statuses.get(item.run_key)
            if key in results or status in _ELSEWHERE:
                continue
            name = f"{spec.name}[{dim}]" if dim else spec.name
            (pending if status == KeyStatus.PENDING else missing)[(tenant, metric, period)].append(
                name
            )
    found = [_hole(grain, where, names) for where, names in sorted(missing.items())] + [
        _pending(grain, where, names, window_start) for where, names in sorted(pending.items())
    ]
    return found


def _hole(grain: Grain, where: tuple[str, str, date], names: list[str]) -> Problem:
    tenant, metric, period = where
    detail = (
        f"{len(names)} pattern results of {format_period(grain, period)} missing though its "
        f"sync succeeded: {', '.join(sorted(names))}"
    )
    command = patterns_command(grain, period, tenant, metric) + " --force"
    note = "no: its keys are done or were never made; no scheduled run fills it"
    return Problem("holes", grain, f"{tenant}::{metric}", detail, command, False, note, period)


def _pending(
    grain: Grain, where: tuple[str, str, date], names: list[str], window_start: date
) -> Problem:
    tenant, metric, period = where
    detail = (
        f"{len(names)} pattern keys of {format_period(grain, period)} pending: "
        f"{', '.join(sorted(names))}"
    )
    soon = period >= window_start
    bound = GRAINS[grain].catch_up_periods
    note = (
        f"yes: the next {SCHEDULED} finishes unfinished pattern keys of its last {bound} periods"
        if soon
        else f"no: older than the last {bound} periods a {SCHEDULED} looks at"
    )
    command = patterns_command(grain, period, tenant, metric)
    return Problem("patterns", grain, f"{tenant}::{metric}", detail, command, soon, note, period)
