"""Run a context's analysis patterns on stored data, each under its own run key.

``sync``, its catch-up and ``backfill`` run them after each context's sync (through
services/patterns/step.py); the ``patterns`` command runs them on their own (:func:`run`).
Patterns never call the source.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine

from fulcrum_sync.catalog import ContextDef, find_tenant
from fulcrum_sync.config import Settings
from fulcrum_sync.domain import (
    ContextResult,
    Grain,
    InputError,
    MetricContext,
    PatternRunResult,
    PatternsRequest,
    PatternsRunResult,
    PatternStatus,
    SkipReason,
)
from fulcrum_sync.logs import bound_fields, log_event
from fulcrum_sync.patterns.registry import PatternSpec, get_pattern, list_patterns, run_pattern
from fulcrum_sync.services.contexts.selection import select_contexts
from fulcrum_sync.services.jobs.keys import Overrides, PatternJob, pattern_jobs
from fulcrum_sync.services.jobs.leasing import keep_leases, warn_taken_over
from fulcrum_sync.services.jobs.runner import (
    KeyedWork,
    Outcome,
    RunContext,
    run_batch,
)
from fulcrum_sync.services.jobs.workers import map_workers
from fulcrum_sync.services.patterns.inputs import ContextData, preloaded
from fulcrum_sync.store import pattern_data
from fulcrum_sync.store.catalog import read_catalog
from fulcrum_sync.store.runs import Claim, KeyDone

__all__ = ["get_pattern", "list_patterns", "run", "run_context_patterns", "show"]

log = logging.getLogger(__name__)

DIMENSION_FAILED = "dimension sync failed"  # why a dimension pattern was not run
KEY_GONE = "its run key {key} was deleted before this run could claim it (state reset?)"


def run_context_patterns(
    rc: RunContext,
    ctx: ContextDef,
    period: date,
    *,
    only: str | None = None,
    skip_dimensions: frozenset[str] = frozenset(),
    data: ContextData | None = None,
    overrides: Overrides = None,
    claims: Mapping[str, Claim] | None = None,
) -> list[PatternRunResult]:
    """Run ``ctx``'s enabled patterns for ``period``; one failing never stops the others.

    Dimension patterns run once per dimension, except for ``skip_dimensions`` (their sync
    failed), which are reported skipped. Without ``data`` the stored data the claimed
    patterns read is read once, in one statement. ``claims``: keys claimed already (with the
    context's sync); the others are claimed here, in one transaction.
    """
    work: list[KeyedWork[PatternJob]] = []
    results: list[PatternRunResult] = []
    for spec, dim, item in pattern_jobs(ctx, period, only, overrides):
        if dim in skip_dimensions:
            results.append(
                PatternRunResult(spec.name, dim, "skipped", item.run_key, DIMENSION_FAILED)
            )
        else:
            work.append(KeyedWork(item, (spec, dim, item)))

    def do_all(jobs: list[PatternJob]) -> list[PatternRunResult]:
        specs = list({job[0].name: job[0] for job in jobs}.values())
        inputs = data or preloaded(rc.engine, ctx, [period], specs)
        return _run_all(rc, ctx, period, jobs, inputs)

    def skipped(w: KeyedWork[PatternJob], claim: Claim) -> PatternRunResult:
        name, dim, key = w.payload[0].name, w.payload[1], w.item.run_key
        if claim is Claim.GONE:
            return PatternRunResult(name, dim, "failed", key, KEY_GONE.format(key=key))
        why = SkipReason.ALREADY_DONE if claim is Claim.DONE else SkipReason.BUSY
        return PatternRunResult(name, dim, PatternStatus.SKIPPED, key, skip_reason=why)

    order = {w.item.run_key: i for i, w in enumerate(work)}
    ran = run_batch(rc, work, do_all, _summarize, skipped, claimed=claims)
    return results + sorted(ran, key=lambda r: order[r.run_key])


def _run_all(
    rc: RunContext, ctx: ContextDef, period: date, jobs: list[PatternJob], data: ContextData
) -> list[PatternRunResult]:
    """Run each pattern, then store every result and complete every key in one transaction."""
    run_at = datetime.now(UTC)
    out: list[PatternRunResult] = []
    rows: list[dict[str, Any]] = []
    done: list[KeyDone] = []
    for spec, dim, item in jobs:
        with bound_fields(**rc.fields(item)):
            result, row = _run_one(rc, ctx, period, spec, dim, item.run_key, data, run_at)
        out.append(result)
        if row is not None:
            rows.append(row)
        o = _summarize(result)
        done.append(KeyDone(item.run_key, rc.owner, o.succeeded, o.counts, o.error))
    completed = pattern_data.save_results(rc.engine, rows, done)
    for lost in sorted({d.run_key for d in done} - completed):
        warn_taken_over(lost)
    return out


def _run_one(
    rc: RunContext,
    ctx: ContextDef,
    period: date,
    spec: PatternSpec,
    dim: str | None,
    key: str,
    data: ContextData,
    run_at: datetime,
) -> tuple[PatternRunResult, dict[str, Any] | None]:
    """Run one pattern; return its result and the row to store (None: nothing to store)."""
    settings = dict(ctx.tenant.pattern_settings.get(spec.name, {}))
    try:
        outcome = run_pattern(spec, data.input_for(spec, period, dim, settings), settings)
    except (ValueError, KeyError) as exc:  # malformed stored data: a failed pattern
        failed = PatternRunResult(spec.name, dim, "failed", key, f"{type(exc).__name__}: {exc}")
        return failed, None
    row = pattern_data.result_row(
        tenant_id=ctx.tenant.tenant_id,
        metric_id=ctx.metric.metric_id,
        pattern=spec.name,
        grain=ctx.grain.value,
        period=period,
        dimension=dim,
        version=spec.version,
        status=outcome.status,
        window=(outcome.window_start, outcome.window_end),
        result=outcome.result,
        error=outcome.error,
        run_id=rc.run_id,
        run_at=run_at,
    )
    return PatternRunResult(spec.name, dim, outcome.status, key, outcome.error_text), row


def _summarize(result: PatternRunResult) -> Outcome:
    # Too little data is a skip, not a failure: the key is done. The key was completed with
    # its result (``_run_all``), so the runner records nothing more.
    return Outcome(
        succeeded=result.status != "failed",
        counts={"status": result.status},
        error=result.error,
        recorded=True,
    )


def run(
    engine: Engine,
    settings: Settings,
    request: PatternsRequest,
    *,
    stop: threading.Event | None = None,
    on_result: Callable[[ContextResult], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    overrides: Overrides = None,
) -> PatternsRunResult:
    """Run the selected contexts' patterns on stored data for ``request.period``.

    Raises InputError for an unknown pattern, tenant or metric (nothing run) or StoreError.
    """
    if request.pattern is not None:
        spec = get_pattern(request.pattern)
        if not spec.supports(request.grain):
            raise InputError(f"pattern {spec.name!r} does not run at grain {request.grain.value}")
    contexts = select_contexts(
        engine, settings, request.grain, request.tenant, request.metric, discover_first=False
    )
    if request.pattern is not None:
        contexts = [c for c in contexts if request.pattern in c.metric.patterns]
    rc = RunContext.start(
        engine,
        "patterns",
        request,
        lease_seconds=settings.lease_seconds,
        stop=stop,
        force=request.force,
    )
    result = PatternsRunResult(rc.run_id, request)
    if on_start is not None:
        on_start(len(contexts))

    def one(ctx: ContextDef) -> ContextResult:
        res = ContextResult(
            ctx.context, request.grain, request.period, "", "succeeded", started_at=_now()
        )
        if not rc.stop.is_set():
            res.patterns = run_context_patterns(
                rc, ctx, request.period, only=request.pattern, overrides=overrides
            )
        res.finished_at = _now()
        counts = res.pattern_counts()
        all_skipped = bool(res.patterns) and counts["skipped"] == len(res.patterns)
        res.status = "failed" if counts["failed"] else "skipped" if all_skipped else "succeeded"
        return res

    def summarize() -> tuple[str, dict[str, Any]]:
        result.interrupted = rc.interrupted
        result.halted = rc.halted[0] if rc.halted else None
        totals = {"succeeded": 0, "skipped": 0, "failed": 0}
        for c in result.contexts:
            for k, v in c.pattern_counts().items():
                totals[k] += v
        return result.outcome, {"contexts": len(result.contexts), "patterns": totals}

    with rc.recording(summarize), keep_leases(engine, rc.owner, rc.lease_seconds):
        for res in map_workers(one, contexts, request.workers):
            result.contexts.append(res)
            _log_context(rc.run_id, request, res)
            if on_result is not None:
                on_result(res)
    return result


def _now() -> datetime:
    return datetime.now(UTC)


def _log_context(run_id: str, request: PatternsRequest, res: ContextResult) -> None:
    log_event(
        log,
        "patterns run",
        logging.ERROR if res.status == "failed" else logging.INFO,
        run_id=run_id,
        tenant=res.context.tenant,
        metric=res.context.metric,
        grain=request.grain.value,
        period=request.period.isoformat(),
        counts=res.pattern_counts(),
        duration=round(res.duration_seconds, 4),
        error="; ".join(p.error or "" for p in res.patterns if p.status == "failed") or None,
    )


def show(
    engine: Engine,
    context: str,
    grain: Grain,
    period: date | None,
    latest: date | None = None,
    *,
    pattern: str | None = None,
    dimension: str | None = None,
) -> list[dict[str, Any]]:
    """Return a context's stored pattern results; raise InputError for an unknown context
    or pattern.

    :param period: the analysis period; None: the latest stored one not after ``latest``.
    :param pattern: only this pattern's results.
    :param dimension: only results for this dimension.
    """
    if pattern is not None:
        get_pattern(pattern)
    mctx = MetricContext.from_string(context)
    catalog = read_catalog(engine)
    tenant = find_tenant(catalog, mctx.tenant)
    if not any(m.metric_id == mctx.metric for m in tenant.metrics):
        known = ", ".join(m.metric_id for m in tenant.metrics)
        raise InputError(
            f"unknown metric {mctx.metric!r} for tenant {mctx.tenant}: known metrics are {known}"
        )
    rows = pattern_data.read_results(
        engine, tenant.tenant_id, mctx.metric, grain.value, period, not_after=latest
    )
    return [
        r
        for r in rows
        if (pattern is None or r["pattern"] == pattern)
        and (dimension is None or r["dimension"] == dimension)
    ]
