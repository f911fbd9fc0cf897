"""Sync a context's periods in as few fetches as it can, then run its patterns period by period.

``backfill`` (a range of periods) and ``sync --catch-up`` (the periods a context missed) both
go through :func:`sync_periods`: the context's period keys are claimed in one transaction,
the claimed periods are fetched as contiguous stretches (one query per series per stretch,
split at the FULL lookback), and the patterns then run for every period on data as of that
period, read once for all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from fulcrum_sync.catalog import ContextDef
from fulcrum_sync.config import Settings
from fulcrum_sync.domain import (
    ContextResult,
    Grain,
    PatternRunResult,
    SyncType,
    Window,
    period_end,
    shift_period,
)
from fulcrum_sync.logs import bound_fields
from fulcrum_sync.services.jobs.keys import sync_item
from fulcrum_sync.services.jobs.runner import KeyedWork, Outcome, RunContext, run_batch
from fulcrum_sync.services.patterns.step import PatternStep
from fulcrum_sync.services.run.sync_context import source_down_reason, sync_context
from fulcrum_sync.sources.base import Source
from fulcrum_sync.store.runs import Claim


@dataclass(frozen=True, slots=True)
class PeriodSync:
    """How one period's sync key ended in this run."""

    period: date
    status: str  # succeeded | failed | done (already) | busy (another process)
    analysable: bool = False  # its base series is stored: its patterns can run
    rows_stored: int = 0
    error: str | None = None
    failed_dimensions: frozenset[str] = frozenset()  # their patterns are skipped


def stretches_of(periods: list[date], grain: Grain, limit: int) -> list[list[date]]:
    """Split sorted periods into contiguous runs of at most ``limit`` periods."""
    out: list[list[date]] = []
    for p in periods:
        if out and len(out[-1]) < limit and shift_period(grain, out[-1][-1], 1) == p:
            out[-1].append(p)
        else:
            out.append([p])
    return out


def _ignore(*_args: object) -> None:
    return None


@dataclass(slots=True)
class Hooks:
    """What the caller counts as the work goes (a backfill's progress, a sync's summary)."""

    fetched: Callable[[ContextResult, list[date]], None] = _ignore  # one stretch synced
    skipped: Callable[[date, Claim], None] = _ignore  # a key done already or busy
    pattern: Callable[[date, PatternRunResult], None] = _ignore  # one pattern run


@dataclass(slots=True)
class PeriodsResult:
    """What :func:`sync_periods` did for one context."""

    periods: list[PeriodSync] = field(default_factory=list)
    fetches: list[ContextResult] = field(default_factory=list)  # one per stretch fetched
    patterns: list[PatternRunResult] = field(default_factory=list)

    @property
    def synced(self) -> list[date]:
        """The periods this run synced (succeeded or failed), oldest first."""
        return sorted(p.period for p in self.periods if p.status in ("succeeded", "failed"))


def sync_periods(
    rc: RunContext,
    source: Source,
    settings: Settings,
    ctx: ContextDef,
    periods: list[date],
    *,
    patterns: PatternStep,
    lookback: bool = False,
    force_full: bool = False,
    hooks: Hooks | None = None,
) -> PeriodsResult:
    """Sync the claimable ``periods`` of ``ctx`` stretch by stretch, then run its patterns.

    ``lookback``: fetch the last claimed period's own windows (FULL or INCREMENTAL lookback)
    once for all claimed periods instead of the stretches, for a context whose series need a
    FULL sync (the periods must lie inside that window). Raises RefusedError (a refused
    credential) and whatever ends the run (the keys are then recorded failed).
    """
    hooks = hooks or Hooks()
    grain = ctx.grain
    limit = settings.lookback[grain][SyncType.FULL]
    out = PeriodsResult()

    def sync_all(claimed: list[date]) -> list[PeriodSync]:
        done: list[PeriodSync] = []
        for stretch in [claimed] if lookback else stretches_of(claimed, grain, limit):
            window = None if lookback else Window(stretch[0], period_end(grain, stretch[-1]))
            with bound_fields(run_key=sync_item(ctx, stretch[-1]).run_key):
                res = sync_context(
                    rc.engine,
                    source,
                    ctx,
                    stretch[-1],
                    settings,
                    force_full=force_full,
                    run_id=rc.run_id,
                    window=window,
                )
            down = source_down_reason(source, res)
            if down is not None:
                rc.halt(down)  # the breaker's trial failed too: stop, release what is left
            out.fetches.append(res)
            hooks.fetched(res, stretch)
            ok = res.status == "succeeded"
            # A failed dimension only skips its own patterns: the base series is stored.
            analysable = ok or (res.base is not None and res.base.success)
            failed = frozenset(res.dimensions_failed)
            done += [
                PeriodSync(
                    p,
                    "succeeded" if ok else "failed",
                    analysable,
                    res.rows_stored,
                    res.error,
                    failed,
                )
                for p in stretch
            ]
        return done

    def skipped(w: KeyedWork[date], claim: Claim) -> PeriodSync:
        hooks.skipped(w.payload, claim)
        if claim is Claim.DONE:
            return PeriodSync(w.payload, "done", analysable=True)
        if claim is Claim.GONE:  # deleted under this run: not synced, never analysed
            return PeriodSync(w.payload, "failed", error=f"run key {w.item.run_key} deleted")
        return PeriodSync(w.payload, "busy")

    work = [KeyedWork(sync_item(ctx, p), p) for p in periods]
    out.periods = run_batch(rc, work, sync_all, _summarize, skipped)
    if patterns.enabled:
        _run_patterns(rc, ctx, patterns, out, hooks)
    return out


def _run_patterns(
    rc: RunContext, ctx: ContextDef, patterns: PatternStep, out: PeriodsResult, hooks: Hooks
) -> None:
    """Run the patterns of every period whose base series is stored, oldest first, on data
    read once for all of them."""
    analysable = sorted((s for s in out.periods if s.analysable), key=lambda s: s.period)
    data = patterns.preload(rc, ctx, [s.period for s in analysable])
    for synced in analysable:
        if rc.stop.is_set():
            break
        skip = synced.failed_dimensions
        for p in patterns.run(rc, ctx, synced.period, skip_dimensions=skip, data=data):
            out.patterns.append(p)
            hooks.pattern(synced.period, p)


def _summarize(synced: PeriodSync) -> Outcome:
    return Outcome(
        succeeded=synced.status == "succeeded",
        counts={"rows_stored": synced.rows_stored},
        error=synced.error,
    )
