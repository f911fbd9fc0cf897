"""The ``sync`` service: every active context of a grain for one period, once per run key.

:func:`run` builds one :class:`~fulcrum_sync.services.run.sync_run.SyncRun` from ``Deps`` and the
request; :func:`plan` says what it would fetch (``--dry-run``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import Engine

from fulcrum_sync.config import Settings
from fulcrum_sync.domain import ContextResult, SyncRequest, SyncRunResult, SyncType, Window
from fulcrum_sync.services.contexts.selection import select_contexts
from fulcrum_sync.services.deps import Deps
from fulcrum_sync.services.patterns.step import PatternStep
from fulcrum_sync.services.run import catch_up
from fulcrum_sync.services.run.statuses import RunStatuses
from fulcrum_sync.services.run.sync_run import CacheChain, SyncRun


@dataclass(frozen=True, slots=True)
class PlannedSeries:
    """What a dry run would do for one series."""

    context: str
    dimension: str | None
    sync_type: SyncType
    window: Window
    periods: list[date] = field(default_factory=list)  # --catch-up: the periods it covers


def plan(engine: Engine, settings: Settings, request: SyncRequest) -> list[PlannedSeries]:
    """Return what ``sync`` would fetch, writing nothing (``--dry-run``)."""
    from fulcrum_sync.services.run.sync_context import plan_series

    if request.catch_up:
        catch_up.max_periods_of(settings, request)
    contexts = select_contexts(
        engine, settings, request.grain, request.tenant, request.metric, dry_run=True
    )
    behind = catch_up.plan(engine, settings, request, contexts) if request.catch_up else None
    planned = []
    statuses = RunStatuses(engine, request.grain.value, contexts)
    for ctx in contexts:
        periods = behind.periods_of(ctx) if behind else [request.period]
        series = plan_series(ctx, periods[-1], statuses.of(ctx), settings, request.force_full)
        coalesced = len(periods) > 1 and all(t is SyncType.INCREMENTAL for _, t, _ in series)
        for dim, sync_type, window in series:
            if coalesced:  # a catch-up fetches the missed periods only
                window = Window(periods[0], window.end)
            planned.append(
                PlannedSeries(
                    ctx.context.to_string(),
                    dim.dimension_id if dim else None,
                    sync_type,
                    window,
                    periods if behind else [],
                )
            )
    return planned


def run(
    request: SyncRequest,
    deps: Deps,
    *,
    stop: threading.Event | None = None,
    on_result: Callable[[ContextResult], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    keep_contexts: bool = True,
) -> SyncRunResult:
    """Sync every selected context for ``request.period`` (services/run/sync_run.py).

    Each context is claimed under its run key first; keys already done are skipped unless
    ``request.force``. With ``request.catch_up`` a context behind syncs every period it
    missed (services/run/catch_up.py); ``request.run_patterns`` runs its patterns, and
    ``request.cache_load`` loads its cache table. Raises InputError (bad filters, an unsafe
    table name, unusable cache target settings) or StoreError (database unreachable).

    :param keep_contexts: keep every context's result in ``result.contexts``; False keeps
        only the failed ones and counts the others.
    """
    engine = deps.get_engine(workers=request.workers, pooled=True)
    loader = cache_loader(deps, request)  # target settings checked before any work
    sync_run = SyncRun(
        engine,
        deps.get_source(),
        deps.get_settings(),
        request,
        patterns_step=PatternStep(request.run_patterns, deps.patterns),
        loader=loader,
        stop=stop,
        on_result=on_result,
        on_start=on_start,
        keep_contexts=keep_contexts,
    )
    return sync_run.execute()


def cache_loader(deps: Deps, request: SyncRequest) -> CacheChain | None:
    """The in-process cache load of ``sync --cache-load`` (None without it).

    Raises InputError for an unknown target or unusable target settings.
    """
    if not request.cache_load:
        return None
    from fulcrum_sync.services.cache.load import ChainedLoad

    sinks = deps.get_sinks()
    engine = deps.get_engine(workers=request.workers, pooled=True)
    return ChainedLoad(engine, deps.get_settings(), sinks, request.grain)
