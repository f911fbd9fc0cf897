"""Run (or resume) a backfill: this shard's contexts, each range in as few fetches as it can.

Each context claims its periods' sync keys in one transaction, fetches the claimed periods in
one query per series per contiguous stretch (split at the FULL lookback), then runs its
patterns period by period on data as of that period. Workers and processes share keys by
claims, so a re-run or a second shard does only what is left.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from typing import Any

from sqlalchemy import Engine

from fulcrum_sync.catalog import ContextDef
from fulcrum_sync.config import Settings
from fulcrum_sync.domain import (
    BackfillPlan,
    BackfillRequest,
    BackfillResult,
    ContextResult,
    PatternRunResult,
    SkipReason,
    Window,
    period_end,
)
from fulcrum_sync.jsonable import jsonable
from fulcrum_sync.logs import bound_fields, log_event
from fulcrum_sync.services.backfill.plan import (
    Planned,
    count_pattern_keys,
    make_plan,
    record_plan,
)
from fulcrum_sync.services.jobs.leasing import keep_leases
from fulcrum_sync.services.jobs.runner import RunContext
from fulcrum_sync.services.jobs.workers import map_workers
from fulcrum_sync.services.patterns.run import DIMENSION_FAILED
from fulcrum_sync.services.patterns.step import PatternStep
from fulcrum_sync.services.run.stretches import Hooks, sync_periods
from fulcrum_sync.sources.base import Source
from fulcrum_sync.store import backfills
from fulcrum_sync.store.runs import Claim

log = logging.getLogger(__name__)
PROGRESS_EVERY_SECONDS = 5.0


class _Progress:
    """Counts finished keys into the result and logs progress every few seconds."""

    def __init__(
        self,
        run_id: str,
        result: BackfillResult,
        total: int,
        on_progress: Callable[[int, int], None] | None,
    ) -> None:
        self._run_id, self._result, self._total = run_id, result, total
        self._on_progress = on_progress
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._logged = 0.0

    def count(self, *, done: int = 0, already: int = 0, busy: int = 0) -> None:
        with self._lock:
            self._result.done += done
            self._result.already_done += already
            self._result.busy += busy
            if done:
                self._report()

    def fail(self, n: int, failure: str, *, refused: bool = False) -> None:
        with self._lock:
            self._result.failed += n
            self._result.refused += n if refused else 0
            self._result.failures.append(failure)
        log_event(log, "backfill keys failed", logging.ERROR, counts={"failed": n}, error=failure)

    def fetched(self, res: ContextResult) -> None:
        with self._lock:
            self._result.rows_fetched += sum(s.rows_fetched for s in res.series)
            self._result.source_queries += len(res.series)

    def _report(self) -> None:
        result = self._result
        done = result.done + result.already_done
        if self._on_progress is not None:
            self._on_progress(done, self._total)
        elapsed = time.monotonic() - self._start
        if elapsed - self._logged < PROGRESS_EVERY_SECONDS and done < self._total:
            return
        self._logged = elapsed
        rate = result.done / elapsed if elapsed else 0.0
        log_event(
            log,
            "backfill progress",
            run_id=self._run_id,
            backfill_id=result.plan.backfill_id,
            grain=result.plan.grain.value,
            counts={"done": done, "total": self._total, "failed": result.failed},
            rate_per_second=round(rate, 2),
            eta_seconds=round((self._total - done) / rate, 1) if rate else None,
            duration=round(elapsed, 2),
        )


def run(
    engine: Engine,
    source: Source,
    settings: Settings,
    request: BackfillRequest,
    *,
    stop: threading.Event | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    on_plan: Callable[[BackfillPlan], None] | None = None,
) -> BackfillResult:
    """Run (or resume) a backfill, this shard's contexts only.

    ``on_plan`` is called once the plan is recorded; ``on_progress(done, total)`` as keys
    finish. Raises InputError for a bad range, shard or resume id.
    """
    planned = make_plan(engine, settings, replace(request, dry_run=False))
    record_plan(engine, planned)
    if on_plan is not None:
        on_plan(planned.plan)
    request, plan = planned.request, planned.plan
    mine = planned.shard_contexts()
    rc = RunContext.start(
        engine,
        "backfill",
        {**jsonable(request), "backfill_id": plan.backfill_id},
        lease_seconds=settings.lease_seconds,
        stop=stop,
        force=request.force,
    )
    result = BackfillResult(plan, rc.run_id)
    total = len(mine) * len(plan.periods)
    total += count_pattern_keys(mine, plan.periods) if request.patterns else 0
    progress = _Progress(rc.run_id, result, total, on_progress)

    def summarize() -> tuple[str, dict[str, Any]]:
        result.interrupted = rc.interrupted
        result.halted = rc.halted[0] if rc.halted else None
        if plan.periods:
            result.rows_in_range = backfills.count_rows(
                engine,
                [(c.tenant.tenant_id, c.metric.metric_id) for c in mine],
                request.grain.value,
                plan.periods[0],
                period_end(request.grain, plan.periods[-1]),
            )
        statuses = backfills.item_statuses(engine, plan.backfill_id or "")
        if statuses and all(s == "succeeded" for s in statuses.values()):
            backfills.mark_finished(engine, plan.backfill_id or "")
        return result.outcome, {
            "backfill_id": plan.backfill_id,
            "done": result.done,
            "failed": result.failed,
            "already_done": result.already_done,
            "rows_fetched": result.rows_fetched,
            "rows_in_range": result.rows_in_range,
            "source_queries": result.source_queries,
        }

    def one(ctx: ContextDef) -> None:
        fields = rc.fields(tenant=ctx.tenant.identifier, metric=ctx.metric.metric_id)
        with bound_fields(**fields, grain=ctx.grain.value):
            _backfill_context(rc, source, settings, ctx, planned, progress)

    with rc.recording(summarize), keep_leases(engine, rc.owner, rc.lease_seconds):
        for _ in map_workers(one, mine, request.workers):
            pass
    return result


def _backfill_context(
    rc: RunContext,
    source: Source,
    settings: Settings,
    ctx: ContextDef,
    planned: Planned,
    progress: _Progress,
) -> None:
    """Sync the claimed periods of ``ctx`` stretch by stretch, then run its patterns."""

    def fetched(res: ContextResult, stretch: list[date]) -> None:
        progress.fetched(res)
        if res.status == "succeeded":
            progress.count(done=len(stretch))
        else:
            window = Window(stretch[0], period_end(ctx.grain, stretch[-1]))
            failure = f"{ctx.context} {window.to_string()}: {res.error}"
            progress.fail(len(stretch), failure, refused=res.refused)

    def skipped(_period: date, claim: Claim) -> None:
        progress.count(**{"already" if claim is Claim.DONE else "busy": 1})

    def pattern(_period: date, p: PatternRunResult) -> None:
        if p.status == "skipped" and p.error == DIMENSION_FAILED:
            return  # not run: its dimension's sync failed (counted there); a resume does it
        if p.skip_reason == SkipReason.ALREADY_DONE:
            progress.count(already=1)
        elif p.skip_reason == SkipReason.BUSY:
            progress.count(busy=1)
        elif p.status == "failed":
            progress.fail(1, f"{p.run_key}: {p.error}")
        else:
            progress.count(done=1)

    sync_periods(
        rc,
        source,
        settings,
        ctx,
        planned.plan.periods,
        patterns=PatternStep(planned.request.patterns),
        hooks=Hooks(fetched, skipped, pattern),
    )
