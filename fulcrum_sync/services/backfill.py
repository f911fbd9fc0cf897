"""The ``backfill`` service: sync and analyse a range of periods, resumable and shardable.

A backfill's plan is periods × contexts, stored with its run keys. Each context fetches its
range in as few source queries as the source's limits allow (one per contiguous stretch of
periods still to do), then runs its patterns period by period on data as of that period.
Contexts are split across shards by position; workers and processes share keys by claims.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine

from fulcrum_sync.catalog import ContextDef
from fulcrum_sync.config import Settings
from fulcrum_sync.domain import (
    Grain,
    InputError,
    PatternContext,
    SyncType,
    Window,
    iter_periods,
    pattern_run_key,
    period_end,
    period_start,
    shift_period,
    sync_run_key,
)
from fulcrum_sync.logs import log_event
from fulcrum_sync.render import to_jsonable
from fulcrum_sync.services import discover as discover_service
from fulcrum_sync.services.runner import RunContext, keep_leases, map_workers
from fulcrum_sync.services.sync_context import sync_context
from fulcrum_sync.sources.base import Source
from fulcrum_sync.store import backfills, runs
from fulcrum_sync.store import contexts as contexts_store
from fulcrum_sync.store.runs import Claim, RunItem

log = logging.getLogger(__name__)
PROGRESS_EVERY_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class BackfillRequest:
    """What ``backfill`` was asked to do; validated by :func:`validate`."""

    grain: Grain
    start: date
    end: date
    tenant: str | None = None
    metric: str | None = None
    patterns: bool = True
    workers: int = 1
    shard: tuple[int, int] | None = None
    resume: str | None = None
    force: bool = False
    dry_run: bool = False


@dataclass(slots=True)
class BackfillPlan:
    """Periods × contexts, and what they cost."""

    grain: Grain
    periods: list[date]
    contexts: list[ContextDef]
    sync_keys: int
    pattern_keys: int
    estimated_queries: int
    backfill_id: str | None = None
    shard: tuple[int, int] | None = None


@dataclass(slots=True)
class BackfillResult:
    """What a backfill (or this shard of it) did."""

    plan: BackfillPlan
    run_id: str
    done: int = 0  # keys executed and succeeded by this process
    failed: int = 0
    already_done: int = 0
    busy: int = 0
    rows_fetched: int = 0
    rows_in_range: int = 0
    source_queries: int = 0
    failures: list[str] = field(default_factory=list)
    interrupted: bool = False

    @property
    def outcome(self) -> str:
        if self.interrupted:
            return "interrupted"
        return "partial" if self.failed else "succeeded"


def parse_shard(
    text: str | None, env: dict[str, str] | None = None, shard_count: int | None = None
) -> tuple[int, int] | None:
    """Parse ``i/n`` (0 <= i < n); default from JOB_COMPLETION_INDEX and the shard count."""
    env = os.environ if env is None else env
    if text is None:
        index = env.get("JOB_COMPLETION_INDEX")
        if index is None or shard_count is None:
            return None
        text = f"{index}/{shard_count}"
    parts = text.split("/")
    if len(parts) == 2 and all(p.strip().isdigit() for p in parts):
        i, n = int(parts[0]), int(parts[1])
        if 0 <= i < n:
            return i, n
    raise InputError(f"invalid shard {text!r}: expected i/n with 0 <= i < n (e.g. 0/2)")


def backfill_arguments(request: BackfillRequest) -> dict[str, Any]:
    """What identifies a backfill: its range and filters."""
    return {
        "grain": request.grain.value,
        "start": request.start.isoformat(),
        "end": request.end.isoformat(),
        "tenant": request.tenant,
        "metric": request.metric,
        "patterns": request.patterns,
    }


def backfill_id(request: BackfillRequest) -> str:
    """A stable id for a backfill's range and filters (shards compute the same one)."""
    text = json.dumps(backfill_arguments(request), sort_keys=True)
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"fulcrum-sync:backfill:{text}"))


def validate(request: BackfillRequest, settings: Settings) -> None:
    """Refuse an empty range or one that starts before the history start."""
    if request.start > request.end:
        raise InputError(
            f"--start {request.start.isoformat()} is after --end {request.end.isoformat()}"
        )
    first = period_start(request.grain, settings.history_start)
    if request.start < first:
        raise InputError(
            f"--start {request.start.isoformat()} is before the history start "
            f"{settings.history_start.isoformat()} (first {request.grain.value} period "
            f"{first.isoformat()}; FULCRUM_SYNC_HISTORY_START)"
        )


def _stretches(periods: list[date], grain: Grain, limit: int) -> list[list[date]]:
    """Split sorted periods into contiguous runs of at most ``limit`` periods."""
    out: list[list[date]] = []
    for p in periods:
        if out and len(out[-1]) < limit and shift_period(grain, out[-1][-1], 1) == p:
            out[-1].append(p)
        else:
            out.append([p])
    return out


def _pattern_items(ctx: ContextDef, period: date) -> list[RunItem]:
    from fulcrum_sync.patterns.registry import get_pattern

    items = []
    for name in ctx.metric.patterns:
        spec = get_pattern(name)
        if not spec.supports(ctx.grain):
            continue
        dims = [d.dimension_id for d in ctx.metric.dimensions] if spec.needs_dimension else [None]
        pctx = PatternContext(ctx.tenant.identifier, ctx.metric.metric_id, name)
        items += [
            RunItem(
                pattern_run_key(ctx.grain, period, pctx, dim),
                "pattern",
                ctx.grain.value,
                period,
                ctx.tenant.identifier,
                ctx.metric.metric_id,
                name,
            )
            for dim in dims
        ]
    return items


def _pattern_keys(contexts: list[ContextDef], periods: list[date]) -> int:
    # Every period of a context has the same patterns (and dimensions).
    return (
        sum(len(_pattern_items(c, periods[0])) for c in contexts) * len(periods) if periods else 0
    )


def _sync_item(ctx: ContextDef, period: date) -> RunItem:
    return RunItem(
        sync_run_key(ctx.grain, period, ctx.context),
        "sync",
        ctx.grain.value,
        period,
        ctx.tenant.identifier,
        ctx.metric.metric_id,
    )


def make_plan(engine: Engine, settings: Settings, request: BackfillRequest) -> BackfillPlan:
    """Return the plan (all shards); writes nothing when contexts are already discovered."""
    validate(request, settings)
    if request.resume:
        record = backfills.get_backfill(engine, request.resume)
        request = _from_record(request, record)
    if request.dry_run:
        contexts = discover_service.preview_contexts(
            engine, settings.source, request.grain, request.tenant, request.metric
        )
    else:
        if not contexts_store.active_context_keys(engine, request.grain):
            discover_service.discover(
                engine, settings.source, settings.history_start, request.grain
            )
        contexts = discover_service.select_contexts(
            engine, request.grain, request.tenant, request.metric
        )
    contexts.sort(key=lambda c: c.context)
    periods = list(iter_periods(request.grain, request.start, request.end))
    limit = settings.lookback[request.grain][SyncType.FULL]
    stretches = len(_stretches(periods, request.grain, limit))
    pattern_keys = _pattern_keys(contexts, periods) if request.patterns else 0
    return BackfillPlan(
        grain=request.grain,
        periods=periods,
        contexts=contexts,
        sync_keys=len(periods) * len(contexts),
        pattern_keys=pattern_keys,
        estimated_queries=sum((1 + len(c.metric.dimensions)) * stretches for c in contexts),
        backfill_id=request.resume,
        shard=request.shard,
    )


def _from_record(request: BackfillRequest, record: backfills.BackfillRecord) -> BackfillRequest:
    args = record.arguments
    return BackfillRequest(
        grain=Grain.parse(record.grain),
        start=record.start,
        end=record.end,
        tenant=args.get("tenant"),
        metric=args.get("metric"),
        patterns=bool(args.get("patterns", True)),
        workers=request.workers,
        shard=request.shard,
        resume=record.backfill_id,
        force=request.force,
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

    The same range and filters always make the same backfill id, so every shard of an Indexed
    Job (and a plain re-run) shares one plan and does only what is left. ``on_plan`` is
    called once the plan is recorded; ``on_progress(done, total)`` as keys finish. Raises
    InputError for a bad range, shard or resume id.
    """
    plan = make_plan(engine, settings, request)
    if request.resume:
        request = _from_record(request, backfills.get_backfill(engine, request.resume))
    else:
        items = [
            item
            for ctx in plan.contexts
            for period in plan.periods
            for item in [
                _sync_item(ctx, period),
                *(_pattern_items(ctx, period) if request.patterns else []),
            ]
        ]
        plan.backfill_id = backfill_id(request)
        backfills.save_backfill(
            engine,
            plan.backfill_id,
            request.grain.value,
            request.start,
            request.end,
            backfill_arguments(request),
            items,
        )
    if on_plan is not None:
        on_plan(plan)
    mine = plan.contexts
    if request.shard is not None:
        index, count = request.shard
        mine = [c for pos, c in enumerate(plan.contexts) if pos % count == index]
    run_id = runs.start_run(
        engine, "backfill", to_jsonable(request) | {"backfill_id": plan.backfill_id}
    )
    started = datetime.now(UTC)
    rc = RunContext(
        engine,
        run_id,
        runs.new_owner(run_id),
        settings.lease_seconds,
        stop or threading.Event(),
        force_before=started if request.force else None,
    )
    result = BackfillResult(plan, run_id)
    total = len(mine) * len(plan.periods)
    total += _pattern_keys(mine, plan.periods) if request.patterns else 0
    lock = threading.Lock()
    clock = {"start": time.monotonic(), "logged": 0.0}

    def tick(n: int = 1) -> None:
        with lock:
            result.done += n
            done = result.done + result.already_done
            if on_progress is not None:
                on_progress(done, total)
            elapsed = time.monotonic() - clock["start"]
            if elapsed - clock["logged"] >= PROGRESS_EVERY_SECONDS or done >= total:
                clock["logged"] = elapsed
                rate = result.done / elapsed if elapsed else 0.0
                log_event(
                    log,
                    "backfill progress",
                    run_id=run_id,
                    backfill_id=plan.backfill_id,
                    grain=request.grain.value,
                    counts={"done": done, "total": total, "failed": result.failed},
                    rate_per_second=round(rate, 2),
                    eta_seconds=round((total - done) / rate, 1) if rate else None,
                    duration=round(elapsed, 2),
                )

    try:
        with keep_leases(engine, rc.owner, settings.lease_seconds):
            for _ in map_workers(
                lambda ctx: _backfill_context(
                    rc, source, settings, ctx, plan, request, result, lock, tick
                ),
                mine,
                request.workers,
            ):
                pass
    finally:
        result.interrupted = rc.stop.is_set()
        if result.interrupted:
            runs.release_all(engine, rc.owner)
        series = [(c.tenant.tenant_id, c.metric.metric_id) for c in mine]
        result.rows_in_range = (
            backfills.count_rows(
                engine,
                series,
                request.grain.value,
                plan.periods[0],
                period_end(request.grain, plan.periods[-1]),
            )
            if plan.periods
            else 0
        )
        statuses = backfills.item_statuses(engine, plan.backfill_id or "")
        if statuses and all(s == "succeeded" for s in statuses.values()):
            backfills.mark_finished(engine, plan.backfill_id or "")
        runs.finish_run(
            engine,
            run_id,
            result.outcome,
            {
                "backfill_id": plan.backfill_id,
                "done": result.done,
                "failed": result.failed,
                "already_done": result.already_done,
                "rows_fetched": result.rows_fetched,
                "rows_in_range": result.rows_in_range,
                "source_queries": result.source_queries,
            },
        )
    return result


def _backfill_context(
    rc: RunContext,
    source: Source,
    settings: Settings,
    ctx: ContextDef,
    plan: BackfillPlan,
    request: BackfillRequest,
    result: BackfillResult,
    lock: threading.Lock,
    tick: Callable[[int], None],
) -> None:
    from fulcrum_sync.services.patterns import run_context_patterns

    grain = plan.grain
    claimed: list[date] = []
    synced: list[date] = []
    for period in plan.periods:
        if rc.stop.is_set():
            return
        claim = runs.claim(
            rc.engine,
            _sync_item(ctx, period).run_key,
            owner=rc.owner,
            run_id=rc.run_id,
            lease_seconds=rc.lease_seconds,
            force_before=rc.force_before,
        )
        if claim is Claim.CLAIMED:
            claimed.append(period)
        elif claim is Claim.DONE:
            synced.append(period)
            with lock:
                result.already_done += 1
        else:
            with lock:
                result.busy += 1
    limit = settings.lookback[grain][SyncType.FULL]
    for stretch in _stretches(claimed, grain, limit):
        window = Window(stretch[0], period_end(grain, stretch[-1]))
        res = sync_context(
            rc.engine, source, ctx, stretch[-1], settings, run_id=rc.run_id, window=window
        )
        ok = res.status == "succeeded"
        for period in stretch:
            runs.complete(
                rc.engine,
                _sync_item(ctx, period).run_key,
                owner=rc.owner,
                succeeded=ok,
                counts={"rows_stored": res.rows_stored},
                error=res.error,
            )
        with lock:
            result.rows_fetched += sum(s.rows_fetched for s in res.series)
            result.source_queries += len(res.series)
            if not ok:
                result.failed += len(stretch)
                result.failures.append(f"{ctx.context} {window.to_string()}: {res.error}")
        if ok:
            synced += stretch
            tick(len(stretch))
        elif res.base is not None and res.base.success:
            synced += stretch  # a failed dimension only skips its own patterns
    if not request.patterns:
        return
    data = _preloaded(rc, ctx, sorted(synced))
    for period in sorted(synced):
        if rc.stop.is_set():
            return
        for p in run_context_patterns(rc, ctx, period, data=data):
            if p.status in ("done", "busy"):
                with lock:
                    result.already_done += p.status == "done"
                    result.busy += p.status == "busy"
            elif p.status == "failed":
                with lock:
                    result.failed += 1
                    result.failures.append(f"{p.run_key}: {p.error}")
            else:
                tick(1)


def _preloaded(rc: RunContext, ctx: ContextDef, periods: list[date]) -> Any:
    """Read the context's data for all its periods' patterns once (sliced per period)."""
    from fulcrum_sync.patterns.registry import get_pattern
    from fulcrum_sync.services.patterns import ContextData

    data = ContextData(rc.engine, ctx)
    if not periods:
        return data
    specs = [get_pattern(n) for n in ctx.metric.patterns]
    specs = [s for s in specs if s.supports(ctx.grain)]
    if not specs:
        return data
    settings = ctx.tenant.pattern_settings
    first, last = periods[0], periods[-1]
    history = [s.history_window(ctx.grain, first, settings.get(s.name)) for s in specs]
    targets = [
        w
        for s in specs
        for p in (first, last)
        if (w := s.targets_window(ctx.grain, p, settings.get(s.name))) is not None
    ]
    start = min(w.start for w in history)
    data.preload(
        Window(start, period_end(ctx.grain, last)),
        Window(
            min([start, *(w.start for w in targets)]),
            max([period_end(ctx.grain, last), *(w.end for w in targets)]),
        ),
    )
    return data
