"""Run a context's analysis patterns on stored data, each under its own run key.

``sync`` chains them in-process after each successful context sync (:func:`make_chain`);
the ``patterns`` command runs them on their own (:func:`run`). Patterns never call the source.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from fulcrum_sync.catalog import ContextDef
from fulcrum_sync.domain import (
    ContextResult,
    Grain,
    InputError,
    PatternContext,
    PatternRunResult,
    Window,
    pattern_run_key,
)
from fulcrum_sync.logs import log_event
from fulcrum_sync.patterns.base import PatternInput
from fulcrum_sync.patterns.registry import PatternSpec, get_pattern, run_pattern

__all__ = ["PatternsRequest", "get_pattern", "make_chain", "run", "show"]
from fulcrum_sync.render import to_jsonable
from fulcrum_sync.services import discover as discover_service
from fulcrum_sync.services.runner import (
    KeyedWork,
    Outcome,
    RunContext,
    keep_leases,
    map_workers,
    run_keyed,
)
from fulcrum_sync.store import pattern_data, runs
from fulcrum_sync.store.runs import Claim, RunItem


@dataclass(frozen=True, slots=True)
class PatternsRequest:
    """What ``patterns`` was asked to run."""

    grain: Grain
    period: date
    tenant: str | None = None
    metric: str | None = None
    pattern: str | None = None
    force: bool = False
    workers: int = 1


@dataclass(slots=True)
class PatternsRunResult:
    """A whole ``patterns`` invocation: one ContextResult (patterns only) per context."""

    run_id: str
    request: PatternsRequest
    contexts: list[ContextResult] = field(default_factory=list)
    interrupted: bool = False

    @property
    def outcome(self) -> str:
        if self.interrupted:
            return "interrupted"
        failed = any(c.pattern_counts()["failed"] for c in self.contexts)
        return "partial" if failed else "succeeded"


log = logging.getLogger(__name__)

_Job = tuple[PatternSpec, str | None, str]  # pattern, dimension, run key


# Patterns to use instead of the registered ones of the same name (tests inject through Deps).
Overrides = Mapping[str, PatternSpec] | None


def _specs_for(ctx: ContextDef, only: str | None, overrides: Overrides) -> list[PatternSpec]:
    names = [n for n in ctx.metric.patterns if only is None or n == only]
    specs = [(overrides or {}).get(n) or get_pattern(n) for n in names]
    return [s for s in specs if s.supports(ctx.grain)]


class ContextData:
    """Loads a context's stored data once per window and slices it per pattern.

    ``preload`` reads a wide window once (a backfill's whole range plus lookback); later
    requests inside it are sliced in memory instead of queried.
    """

    def __init__(self, engine: Engine, ctx: ContextDef) -> None:
        self._engine, self._ctx = engine, ctx
        self._cache: dict[tuple[str, str | None, Window], pd.DataFrame] = {}
        self._wide: dict[tuple[str, str | None], tuple[Window, pd.DataFrame]] = {}

    def preload(self, history: Window, targets: Window) -> None:
        """Read every series, dimension and the targets over a wide window once."""
        self._wide[("series", None)] = (history, self._read("series", None, history))
        self._wide[("targets", None)] = (targets, self._read("targets", None, targets))
        for dim in self._ctx.metric.dimensions:
            key = ("dimension", dim.dimension_id)
            self._wide[key] = (history, self._read("dimension", dim.dimension_id, history))

    def _read(self, kind: str, dimension: str | None, window: Window) -> pd.DataFrame:
        ids = (
            self._engine,
            self._ctx.tenant.tenant_id,
            self._ctx.metric.metric_id,
            self._ctx.grain.value,
        )
        if kind == "series":
            return pattern_data.read_series(*ids, window)
        if kind == "targets":
            return pattern_data.read_targets(*ids, window)
        return pattern_data.read_dimension(*ids, dimension or "", window)

    def _get(self, kind: str, dimension: str | None, window: Window) -> pd.DataFrame:
        key = (kind, dimension, window)
        if key not in self._cache:
            wide = self._wide.get((kind, dimension))
            if wide and wide[0].start <= window.start and window.end <= wide[0].end:
                frame = wide[1]
                dates = frame["date"] if not frame.empty else None
                self._cache[key] = (
                    frame
                    if dates is None
                    else frame[
                        (dates >= pd.Timestamp(window.start)) & (dates <= pd.Timestamp(window.end))
                    ]
                )
            else:
                self._cache[key] = self._read(kind, dimension, window)
        return self._cache[key]

    def input_for(
        self, spec: PatternSpec, period: date, dimension: str | None, settings: dict[str, Any]
    ) -> PatternInput:
        grain = self._ctx.grain
        window = spec.history_window(grain, period, settings)
        targets_window = spec.targets_window(grain, period, settings)
        return PatternInput(
            grain=grain,
            analysis_period=period,
            series=self._get("series", None, window),
            dimension=dimension,
            dimension_series=self._get("dimension", dimension, window) if dimension else None,
            targets=self._get("targets", None, targets_window) if targets_window else None,
        )


def run_context_patterns(
    rc: RunContext,
    ctx: ContextDef,
    period: date,
    *,
    only: str | None = None,
    skip_dimensions: frozenset[str] = frozenset(),
    data: ContextData | None = None,
    overrides: Overrides = None,
) -> list[PatternRunResult]:
    """Run ``ctx``'s enabled patterns for ``period``; one failing never stops the others.

    Dimension patterns run once per dimension, except for ``skip_dimensions`` (their sync
    failed), which are reported skipped.
    """
    data = data or ContextData(rc.engine, ctx)
    work: list[KeyedWork[_Job]] = []
    results: list[PatternRunResult] = []
    for spec in _specs_for(ctx, only, overrides):
        pctx = PatternContext(ctx.tenant.identifier, ctx.metric.metric_id, spec.name)
        dims = [d.dimension_id for d in ctx.metric.dimensions] if spec.needs_dimension else [None]
        for dim in dims:
            key = pattern_run_key(ctx.grain, period, pctx, dim)
            if dim in skip_dimensions:
                results.append(
                    PatternRunResult(spec.name, dim, "skipped", key, "dimension sync failed")
                )
                continue
            item = RunItem(
                key,
                "pattern",
                ctx.grain.value,
                period,
                ctx.tenant.identifier,
                ctx.metric.metric_id,
                spec.name,
            )
            work.append(KeyedWork(item, (spec, dim, key)))

    def do(job: _Job) -> PatternRunResult:
        spec, dim, key = job
        settings = dict(ctx.tenant.pattern_settings.get(spec.name, {}))
        try:
            outcome = run_pattern(spec, data.input_for(spec, period, dim, settings), settings)
        except (ValueError, KeyError) as exc:  # malformed stored data: a failed pattern
            return PatternRunResult(spec.name, dim, "failed", key, f"{type(exc).__name__}: {exc}")
        pattern_data.save_result(
            rc.engine,
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
            run_at=datetime.now(UTC),
        )
        return PatternRunResult(spec.name, dim, outcome.status, key, outcome.error_text)

    def skipped(w: KeyedWork[_Job], claim: Claim) -> PatternRunResult:
        status = "done" if claim is Claim.DONE else "busy"
        return PatternRunResult(w.payload[0].name, w.payload[1], status, w.item.run_key)

    results += run_keyed(
        rc, work, do, _summarize, skipped, workers=1, renew=False, batch_claim=True
    )
    return results


def _summarize(result: PatternRunResult) -> Outcome:
    # Too little data is a skip, not a failure: the key is done.
    return Outcome(
        succeeded=result.status != "failed", counts={"status": result.status}, error=result.error
    )


def make_chain(
    overrides: Overrides = None,
) -> Callable[[RunContext, ContextDef, ContextResult], None]:
    """Return the hook ``sync`` calls after each context whose base series was stored."""

    def chain(rc: RunContext, ctx: ContextDef, res: ContextResult) -> None:
        res.patterns.extend(
            run_context_patterns(
                rc,
                ctx,
                res.period,
                skip_dimensions=frozenset(res.dimensions_failed),
                overrides=overrides,
            )
        )

    return chain


def select_for(engine: Engine, request: PatternsRequest) -> list[ContextDef]:
    """Return the contexts a ``patterns`` request covers; raise InputError on bad filters."""
    if request.pattern is not None:
        spec = get_pattern(request.pattern)
        if not spec.supports(request.grain):
            raise InputError(f"pattern {spec.name!r} does not run at grain {request.grain.value}")
    contexts = discover_service.select_contexts(
        engine, request.grain, request.tenant, request.metric
    )
    if request.pattern is not None:
        contexts = [c for c in contexts if request.pattern in c.metric.patterns]
    return contexts


def run(
    engine: Engine,
    lease_seconds: int,
    request: PatternsRequest,
    *,
    stop: threading.Event | None = None,
    on_result: Callable[[ContextResult], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    overrides: Overrides = None,
) -> PatternsRunResult:
    """Run the selected contexts' patterns on stored data for ``request.period``."""
    contexts = select_for(engine, request)
    started = datetime.now(UTC)
    run_id = runs.start_run(engine, "patterns", to_jsonable(request))
    rc = RunContext(
        engine,
        run_id,
        runs.new_owner(run_id),
        lease_seconds,
        stop or threading.Event(),
        force_before=started if request.force else None,
    )
    result = PatternsRunResult(run_id, request)
    if on_start is not None:
        on_start(len(contexts))

    def one(ctx: ContextDef) -> ContextResult:
        res = ContextResult(
            ctx.context,
            request.grain,
            request.period,
            "",
            "succeeded",
            started_at=datetime.now(UTC),
        )
        if not rc.stop.is_set():
            res.patterns = run_context_patterns(
                rc, ctx, request.period, only=request.pattern, overrides=overrides
            )
        res.finished_at = datetime.now(UTC)
        res.status = "failed" if res.pattern_counts()["failed"] else "succeeded"
        return res

    try:
        with keep_leases(engine, rc.owner, lease_seconds):
            for res in map_workers(one, contexts, request.workers):
                result.contexts.append(res)
                log_event(
                    log,
                    "patterns run",
                    run_id=run_id,
                    tenant=res.context.tenant,
                    metric=res.context.metric,
                    grain=request.grain.value,
                    period=request.period.isoformat(),
                    counts=res.pattern_counts(),
                    duration=round(res.duration_seconds, 4),
                    error="; ".join(p.error or "" for p in res.patterns if p.status == "failed")
                    or None,
                )
                if on_result is not None:
                    on_result(res)
    finally:
        result.interrupted = rc.stop.is_set()
        if result.interrupted:
            runs.release_all(engine, rc.owner)
        runs.finish_run(
            engine,
            run_id,
            result.outcome,
            {
                "contexts": len(result.contexts),
                "patterns": _totals(result.contexts),
            },
        )
    return result


def _totals(contexts: list[ContextResult]) -> dict[str, int]:
    totals = {"succeeded": 0, "skipped": 0, "failed": 0}
    for c in contexts:
        for k, v in c.pattern_counts().items():
            totals[k] += v
    return totals


def show(engine: Engine, context: str, grain: Grain, period: date | None) -> list[dict[str, Any]]:
    """Return a context's stored pattern results; raise InputError for an unknown context."""
    from fulcrum_sync.catalog import find_tenant
    from fulcrum_sync.domain import MetricContext
    from fulcrum_sync.store.catalog import read_catalog

    mctx = MetricContext.from_string(context)
    catalog = read_catalog(engine)
    tenant = find_tenant(catalog, mctx.tenant)
    if not any(m.metric_id == mctx.metric for m in tenant.metrics):
        known = ", ".join(m.metric_id for m in tenant.metrics)
        raise InputError(
            f"unknown metric {mctx.metric!r} for tenant {mctx.tenant}: known metrics are {known}"
        )
    return pattern_data.read_results(engine, tenant.tenant_id, mctx.metric, grain.value, period)
