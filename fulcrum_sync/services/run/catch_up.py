"""``sync --catch-up``: the periods each context missed since its last successful sync.

For each selected context, every period after the latest one whose sync key succeeded, up
to the target, oldest first, at most ``max_periods`` of them per run: fetched as one
coalesced range like a backfill (services/run/stretches.py), then patterns per period on data as
of that period. A context with no earlier success gets only the target (its FULL sync brings
the history); one that is up to date takes the plain single-period path. The periods beyond
the bound are named with the backfill that covers them. The run also finishes the pattern
keys of the last ``max_periods`` periods that were left unfinished (released by a stopped
run, failed, held by a dead process, or never started though their period was synced).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from fulcrum_sync.catalog import ContextDef
from fulcrum_sync.config import Settings
from fulcrum_sync.domain import (
    GRAINS,
    CatchUpRest,
    ContextResult,
    InputError,
    SeriesResult,
    SyncRequest,
    SyncType,
    Window,
    missed_periods,
    period_end,
    rest_of,
    shift_period,
)
from fulcrum_sync.services.jobs.keys import pattern_keys, sync_item
from fulcrum_sync.services.jobs.runner import RunContext
from fulcrum_sync.services.patterns.step import PatternStep
from fulcrum_sync.sources.base import Source
from fulcrum_sync.store import progress

if TYPE_CHECKING:
    from fulcrum_sync.store.sync_status import SeriesStatus

BUSY = "claimed by another running process"
ALREADY_DONE = "already done (use --force to run again)"


@dataclass(slots=True)
class CatchUpPlan:
    """What a catch-up run does beyond the plain sync of its target period."""

    target: date
    max_periods: int
    periods: dict[str, list[date]] = field(default_factory=dict)  # context -> periods to sync
    rest: list[CatchUpRest] = field(default_factory=list)  # beyond the bound: for a backfill
    older_patterns: dict[str, list[date]] = field(default_factory=dict)  # unfinished keys

    def periods_of(self, ctx: ContextDef) -> list[date]:
        """The periods ``ctx`` syncs in this run, oldest first."""
        return self.periods.get(ctx.context.to_string(), [self.target])

    def catches_up(self, ctx: ContextDef) -> bool:
        """True when ``ctx`` syncs more (or other) periods than the target alone."""
        return ctx.context.to_string() in self.periods


def max_periods_of(settings: Settings, request: SyncRequest) -> int:
    """The bound per context: ``--max-periods`` or the grain's default.

    Raises InputError when it exceeds the FULL lookback (one FULL window must hold them).
    """
    grain = request.grain
    bound = request.max_periods or GRAINS[grain].catch_up_periods
    limit = settings.lookback[grain][SyncType.FULL]
    if bound > limit:
        raise InputError(
            f"--max-periods {bound} is more than the FULL lookback of {limit} {grain.value}s "
            f"(FULCRUM_SYNC_LOOKBACK_{grain.value.upper()}_FULL): use backfill for a longer range"
        )
    return bound


def plan(
    engine: Engine, settings: Settings, request: SyncRequest, contexts: list[ContextDef]
) -> CatchUpPlan:
    """Work out each context's missed periods, the rest beyond the bound, older patterns.

    Raises InputError for a bound over the FULL lookback, StoreError.
    """
    grain, target = request.grain, request.period
    bound = max_periods_of(settings, request)
    result = CatchUpPlan(target, bound)
    latest = progress.latest_synced(engine, grain.value)
    beyond: dict[tuple[date, date], list[str]] = {}
    for ctx in contexts:
        name = ctx.context.to_string()
        last = latest.get((ctx.tenant.identifier, ctx.metric.metric_id))
        missed = missed_periods(grain, last, target)
        if len(missed) > bound:
            beyond.setdefault((missed[bound], missed[-1]), []).append(name)
            missed = missed[:bound]
        if missed != [target]:
            result.periods[name] = missed
    result.rest = [rest_of(grain, s, e, names) for (s, e), names in sorted(beyond.items())]
    first = shift_period(grain, target, -(bound - 1))
    _older_patterns(engine, request, contexts, result, first)
    return result


def _older_patterns(
    engine: Engine,
    request: SyncRequest,
    contexts: list[ContextDef],
    result: CatchUpPlan,
    first: date,
) -> None:
    """The periods from ``first`` whose pattern keys are unfinished, or missing though the
    period is synced (a hole an older run left), per context, oldest first."""
    grain, target = request.grain, request.period
    selected = {(c.tenant.identifier, c.metric.metric_id): c for c in contexts}
    found = [
        (row["tenant"], row["metric_id"], row["period"])
        for row in progress.unfinished_patterns(engine, grain.value, first, target, pending=True)
    ]
    if request.run_patterns:
        # Counted from the keys' table (domain/pattern_kinds.py): no pattern, no pandas.
        wanted = {k: len(pattern_keys(c, target)) for k, c in selected.items()}
        counts = progress.pattern_keys_of_synced(engine, grain.value, first, target)
        found += [k for k, n in counts.items() if n < wanted.get((k[0], k[1]), 0)]
    for tenant, metric, period in sorted(found, key=lambda k: k[2]):
        owner = selected.get((tenant, metric))
        if owner is None or period in result.periods_of(owner):
            continue  # not selected, or its periods run their patterns anyway
        periods = result.older_patterns.setdefault(owner.context.to_string(), [])
        if period not in periods:
            periods.append(period)


def sync_missed(
    rc: RunContext,
    source: Source,
    settings: Settings,
    ctx: ContextDef,
    periods: list[date],
    request: SyncRequest,
    patterns: PatternStep,
    statuses: dict[str, SeriesStatus] | None = None,
) -> ContextResult:
    """Sync ``periods`` of ``ctx`` as one coalesced range, then its patterns period by period.

    A context whose series need a FULL sync (a changed definition, a new dimension,
    ``--force-full``) fetches its last period's own windows instead, which hold every missed
    period. ``statuses``: its series statuses when the caller read them (for many contexts
    at once). Raises RefusedError (a refused credential).
    """
    # Loaded by the contexts behind only: a catch-up that finds everything done needs none.
    from fulcrum_sync.services.run.stretches import sync_periods
    from fulcrum_sync.services.run.sync_context import plan_series
    from fulcrum_sync.store import backfills, sync_status

    started = datetime.now(UTC)
    if statuses is None:
        statuses = sync_status.read_statuses(
            rc.engine, ctx.tenant.tenant_id, ctx.metric.metric_id, ctx.grain.value
        )
    planned = plan_series(ctx, periods[-1], statuses, settings, request.force_full)
    full = any(sync_type is SyncType.FULL for _, sync_type, _ in planned)
    done = sync_periods(
        rc,
        source,
        settings,
        ctx,
        periods,
        patterns=patterns,
        lookback=full,
        force_full=request.force_full,
    )
    synced = done.synced
    last = synced[-1] if synced else periods[-1]
    res = _merge(done.fetches) or ContextResult(
        ctx.context, ctx.grain, last, sync_item(ctx, last).run_key, "skipped"
    )
    res.period, res.run_key = last, sync_item(ctx, last).run_key
    res.started_at, res.finished_at = started, datetime.now(UTC)
    res.periods = synced
    res.patterns = done.patterns
    if not synced:
        all_done = all(p.status == "done" for p in done.periods)
        res.skip_reason = ALREADY_DONE if all_done else BUSY
    else:
        grain = ctx.grain
        res.rows_in_range = backfills.count_rows(
            rc.engine,
            [(ctx.tenant.tenant_id, ctx.metric.metric_id)],
            grain.value,
            synced[0],
            period_end(grain, synced[-1]),
        )
    return res


def finish_older_patterns(
    rc: RunContext,
    ctx: ContextDef,
    res: ContextResult,
    periods: list[date],
    patterns: PatternStep,
) -> None:
    """Run the unfinished pattern keys of ``periods`` (older than this run's own periods)."""
    for period in periods:
        if rc.stop.is_set():
            return
        ran = patterns.run(rc, ctx, period)
        res.patterns.extend(p for p in ran if not p.claimed_elsewhere)


def loadable(res: ContextResult) -> bool:
    """True when ``res``'s cache table may be loaded: its sync (this run's or an earlier
    one's) and its patterns succeeded."""
    if res.pattern_counts()["failed"]:
        return False
    if res.status == "skipped":
        return res.skip_reason != BUSY
    return res.status == "succeeded"


def _merge(fetches: list[ContextResult]) -> ContextResult | None:
    """One result for several stretches of a context: series counts summed per series."""
    if len(fetches) <= 1:
        return fetches[0] if fetches else None
    first, last = fetches[0], fetches[-1]
    statuses = {f.status for f in fetches}
    status = statuses.pop() if len(statuses) == 1 else "partial"
    merged = ContextResult(first.context, first.grain, last.period, last.run_key, status)
    by_series: dict[str | None, SeriesResult] = {}
    for fetch in fetches:
        for s in fetch.series:
            m = by_series.get(s.dimension)
            if m is None:
                by_series[s.dimension] = dataclasses.replace(
                    s, skipped=dataclasses.replace(s.skipped)
                )
                continue
            m.rows_fetched += s.rows_fetched
            m.inserted, m.updated = m.inserted + s.inserted, m.updated + s.updated
            m.unchanged += s.unchanged
            for name in ("null_value", "non_finite", "null_slice", "duplicate"):
                setattr(m.skipped, name, getattr(m.skipped, name) + getattr(s.skipped, name))
            m.window = Window(min(m.window.start, s.window.start), max(m.window.end, s.window.end))
            m.success = m.success and s.success
            m.error = m.error or s.error
            m.dependency_failure = m.dependency_failure or s.dependency_failure
            m.source_down = m.source_down or s.source_down
    merged.base = by_series.pop(None, None)
    merged.dimensions = list(by_series.values())
    merged.error = "; ".join(f.error for f in fetches if f.error) or None
    merged.dependency_failure = any(f.dependency_failure for f in fetches)
    return merged


__all__ = [
    "BUSY",
    "CatchUpPlan",
    "finish_older_patterns",
    "loadable",
    "max_periods_of",
    "plan",
    "sync_missed",
]
