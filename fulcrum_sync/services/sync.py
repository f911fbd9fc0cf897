"""The ``sync`` service: every active context of a grain for one period, once per run key."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine

from fulcrum_sync.catalog import ContextDef
from fulcrum_sync.config import Settings
from fulcrum_sync.domain import (
    ContextResult,
    RefusedError,
    SyncRequest,
    SyncRunResult,
    SyncType,
    Window,
    format_period,
)
from fulcrum_sync.jsonable import jsonable
from fulcrum_sync.logs import log_event
from fulcrum_sync.services.keys import pattern_jobs, sync_item
from fulcrum_sync.services.runner import KeyedWork, Outcome, RunContext, run_keyed
from fulcrum_sync.services.selection import select_contexts
from fulcrum_sync.services.sync_context import plan_series, source_down_reason, sync_context
from fulcrum_sync.sources.base import Source
from fulcrum_sync.store import runs, sync_status
from fulcrum_sync.store.runs import Claim

log = logging.getLogger(__name__)

ALREADY_DONE = "already done (use --force to run again)"
BUSY = "claimed by another running process"
FINISHING_PATTERNS = "already synced; ran its unfinished patterns"

_EVENTS = {"skipped": "context skipped", "failed": "context failed", "partial": "context failed"}

# Runs a context's patterns after its sync; appends to ``result.patterns``.
PatternChain = Callable[[RunContext, ContextDef, ContextResult], None]


@dataclass(frozen=True, slots=True)
class PlannedSeries:
    """What a dry run would do for one series."""

    context: str
    dimension: str | None
    sync_type: SyncType
    window: Window


def plan(engine: Engine, settings: Settings, request: SyncRequest) -> list[PlannedSeries]:
    """Return what ``sync`` would fetch, writing nothing (``--dry-run``)."""
    contexts = select_contexts(
        engine, settings, request.grain, request.tenant, request.metric, dry_run=True
    )
    planned = []
    statuses = _Statuses(engine, request.grain.value, contexts)
    for ctx in contexts:
        for dim, sync_type, window in plan_series(
            ctx, request.period, statuses.of(ctx), settings, request.force_full
        ):
            planned.append(
                PlannedSeries(
                    ctx.context.to_string(), dim.dimension_id if dim else None, sync_type, window
                )
            )
    return planned


def run(
    engine: Engine,
    source: Source,
    settings: Settings,
    request: SyncRequest,
    *,
    chain: PatternChain | None = None,
    stop: threading.Event | None = None,
    on_result: Callable[[ContextResult], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    keep_contexts: bool = True,
) -> SyncRunResult:
    """Sync every selected context for ``request.period``.

    Each context is claimed under its run key first; keys already done are skipped unless
    ``request.force``. Raises InputError (bad filters) or StoreError (database unreachable).

    :param keep_contexts: keep every context's result in ``result.contexts``; False keeps
        only the failed ones and counts the others (memory flat in the number of contexts,
        for a job whose output is the log lines of each context).
    """
    contexts = select_contexts(engine, settings, request.grain, request.tenant, request.metric)
    rc = RunContext.start(
        engine,
        "sync",
        request,
        lease_seconds=settings.lease_seconds,
        stop=stop,
        force=request.force,
    )
    run_id = rc.run_id
    result = SyncRunResult(run_id=run_id, request=request, started_at=datetime.now(UTC))
    before = source.stats()
    if on_start is not None:
        on_start(len(contexts))
    work = [KeyedWork(sync_item(c, request.period), c) for c in contexts]
    statuses = _Statuses(engine, request.grain.value, contexts)

    def do(ctx: ContextDef) -> ContextResult:
        res = sync_context(
            engine,
            source,
            ctx,
            request.period,
            settings,
            force_full=request.force_full,
            run_id=run_id,
            statuses=statuses.of(ctx),
            owner=rc.owner,  # its run key completes in the transaction of its writes
        )
        down = source_down_reason(source, res)
        if down is not None:
            rc.halt(down)  # start no other context: the ones not started are released
        if chain is not None and request.run_patterns and res.base is not None and res.base.success:
            chain(rc, ctx, res)
        return res

    analysed: list[set[str]] = []  # the period's succeeded pattern keys, read once

    def skipped(w: KeyedWork[ContextDef], claim: Claim) -> ContextResult:
        res = ContextResult(
            context=w.payload.context,
            grain=request.grain,
            period=request.period,
            run_key=w.item.run_key,
            status="skipped",
            skip_reason=ALREADY_DONE if claim is Claim.DONE else BUSY,
        )
        if claim is Claim.DONE and chain is not None and request.run_patterns:
            if not analysed:
                analysed.append(
                    runs.succeeded_keys(engine, "pattern", request.grain.value, request.period)
                )
            wanted = {job[2].run_key for job in pattern_jobs(w.payload, request.period)}
            if not wanted <= analysed[0]:  # interrupted or failed patterns: finish them
                res.skip_reason = FINISHING_PATTERNS
                res.started_at = datetime.now(UTC)
                chain(rc, w.payload, res)
                res.finished_at = datetime.now(UTC)
        return res

    def report(res: ContextResult) -> None:
        if keep_contexts or res.status in ("failed", "partial") or res.pattern_counts()["failed"]:
            result.contexts.append(res)
        else:
            result.tally.add(res)
        log_context(run_id, res)
        if on_result is not None:
            on_result(res)

    def summarize() -> tuple[str, dict[str, object]]:
        result.interrupted = rc.interrupted
        result.halted = rc.halted[0] if rc.halted else None
        result.finished_at = datetime.now(UTC)
        result.not_started = len(work) - result.context_count if rc.stop.is_set() else 0
        result.source = source.stats().since(before)
        return result.outcome, summarize_run(result)

    with rc.recording(summarize):
        try:
            run_keyed(rc, work, do, _outcome, skipped, workers=request.workers, on_result=report)
        except RefusedError as exc:  # a wrong secret or URL: nothing more is sent (exit 2)
            result.refused = str(exc)
            log_event(log, "source refused the credentials", logging.ERROR, error=str(exc))
    return result


def log_context(run_id: str | None, res: ContextResult) -> None:
    """Log one context's outcome as a structured event (a failure at ``error`` level)."""
    failed_patterns = res.pattern_counts()["failed"]
    log_event(
        log,
        _EVENTS.get(res.status, "context synced"),
        logging.ERROR if res.status in ("failed", "partial") or failed_patterns else logging.INFO,
        run_id=run_id,
        run_key=res.run_key,
        tenant=res.context.tenant,
        metric=res.context.metric,
        grain=res.grain.value,
        period=res.period.isoformat(),
        status=res.status,
        sync_type=res.sync_types,
        counts={
            "rows_stored": res.rows_stored,
            "rows_skipped": res.rows_skipped,
            "dimensions_failed": len(res.dimensions_failed),
            **{f"patterns_{k}": v for k, v in res.pattern_counts().items()},
        },
        duration=round(res.duration_seconds, 4),
        error=res.error
        or "; ".join(f"{p.pattern}: {p.error}" for p in res.patterns if p.status == "failed")
        or res.skip_reason,
    )


class _Statuses:
    """The series statuses of a run's contexts, read for ``CHUNK`` contexts at a time (in the
    order of the work) when the first of them needs its own: one query per chunk instead of
    one per context, and memory bounded however many contexts the run has."""

    CHUNK = 500

    def __init__(self, engine: Engine, grain: str, contexts: list[ContextDef]) -> None:
        self._engine, self._grain, self._contexts = engine, grain, contexts
        self._chunk_of = {id(c): i // self.CHUNK for i, c in enumerate(contexts)}
        self._read: set[int] = set()
        self._statuses: sync_status.GrainStatuses = {}
        self._lock = threading.Lock()

    def of(self, ctx: ContextDef) -> dict[str, sync_status.SeriesStatus]:
        key = (ctx.tenant.tenant_id, ctx.metric.metric_id)
        with self._lock:
            chunk = self._chunk_of[id(ctx)]
            if chunk not in self._read:
                self._read.add(chunk)
                part = self._contexts[chunk * self.CHUNK : (chunk + 1) * self.CHUNK]
                ids = [(c.tenant.tenant_id, c.metric.metric_id) for c in part]
                read = sync_status.read_grain_statuses(self._engine, self._grain, ids)
                self._statuses.update(read)
            return self._statuses.pop(key, {})


def _outcome(res: ContextResult) -> Outcome:
    """The run-item outcome of a context's sync; recorded already when its writes did it."""
    if res.key_done:
        return Outcome(succeeded=res.status == "succeeded", error=res.error, recorded=True)
    return summarize_context(res)


def summarize_context(res: ContextResult) -> Outcome:
    """The run-item outcome of one context's sync."""
    counts = {
        "rows_stored": res.rows_stored,
        "rows_skipped": res.rows_skipped,
        "dimensions_failed": res.dimensions_failed,
        "patterns": res.pattern_counts(),
    }
    return Outcome(succeeded=res.status == "succeeded", counts=counts, error=res.error)


def summarize_run(result: SyncRunResult) -> dict[str, object]:
    """Counts for the ``runs`` row."""
    return {
        "period": format_period(result.request.grain, result.request.period),
        "contexts": result.context_count,
        "by_status": result.status_counts(),
        "rows_stored": result.rows_stored,
        "rows_skipped": result.rows_skipped,
        "failed": [c.context.to_string() for c in result.failed],
        "halted": result.halted,
        "not_started": result.not_started,
        "source": jsonable(result.source),
    }
