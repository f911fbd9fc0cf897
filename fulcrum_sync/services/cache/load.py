"""Load each context's stored series into its cache table: ``cache-load`` and
``sync --cache-load``, through one :class:`CacheLoader`.

A context whose stored series did not change since its last successful load into the target
(the same data version: store/versions.py) is reported ``unchanged`` and not copied again,
unless forced. ``cache-load`` (:func:`run`) loads every selected context in one call;
``sync --cache-load`` queues each context once its sync and patterns succeeded and loads the
queue together at the end of the run, or every ``CACHE_BATCH`` contexts
(services/run/sync_run.py), each context keeping its own result. Processes loading at once
(the pods of one grain's sync) load each changed table once: a load is taken before it is
done (store/cache_claims.py's ``hold_loads``), and one another process holds is reported
``skipped`` (services/cache/destination.py's ``LOADING_ELSEWHERE``).

Each tenant loads into its destination (sinks/destinations.py): its own ``cache:`` or the
settings'. Contexts are grouped by destination; each group is one batch over the run's one
connection to it (services/cache/destination.py: one staged file, one COPY, the tables
replaced a few requests at a time), and the groups run at once. A tenant whose destination
cannot be built (a missing variable or file) fails alone, naming the fix; so does a
destination that refuses its credentials or cannot be reached. ``cache-load`` ends with that
error when it is the only destination (exit 2 for a refusal or a missing secret, 3
unreachable); ``sync`` keeps its sync and fails those contexts' loads.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from fulcrum_sync.catalog import ContextDef
from fulcrum_sync.config import Settings
from fulcrum_sync.domain import (
    CacheLoadResult,
    ContextCacheResult,
    Grain,
    InputError,
)
from fulcrum_sync.logs import bound_fields, log_event
from fulcrum_sync.services.cache.destination import (
    EMPTY_REASON,
    DestinationLoad,
    Planned,
    Sessions,
    load_destination,
)
from fulcrum_sync.services.cache.records import context_fields, record
from fulcrum_sync.services.contexts.selection import select_contexts
from fulcrum_sync.services.jobs.runner import RunContext
from fulcrum_sync.sinks.base import CacheSink
from fulcrum_sync.sinks.destinations import CacheDestinations
from fulcrum_sync.sinks.identifiers import CacheTable, check_collisions, normalize_part

log = logging.getLogger(__name__)

__all__ = ["EMPTY_REASON", "CacheLoader", "plan_tables", "run"]


def plan_tables(
    sink: CacheSink | dict[str, CacheSink],
    selected: list[ContextDef],
    others: list[ContextDef] | None = None,
) -> dict[str, CacheTable]:
    """Return ``{tenant::metric: table}`` for ``selected``; run no SQL.

    :param sink: the sink of every context, or ``{tenant::metric: sink}`` for ``selected``
        (names do not depend on the destination: ``others`` are named by any of them).
    Raises InputError when a name is unsafe or two contexts (among ``selected`` and
    ``others``, the rest of the grain's active contexts) would share a table.
    """
    sinks = sink if isinstance(sink, dict) else {c.context.to_string(): sink for c in selected}
    tables = {
        c.context.to_string(): sinks[c.context.to_string()].table_for(
            c.tenant.identifier, c.metric.metric_id, c.grain
        )
        for c in selected
        if c.context.to_string() in sinks
    }
    namer = next(iter(sinks.values()), None)
    pairs = [(ctx, tbl.name) for ctx, tbl in tables.items()]
    for c in others or []:
        name = c.context.to_string()
        if name in tables or namer is None:
            continue
        try:
            other = namer.table_for(c.tenant.identifier, c.metric.metric_id, c.grain)
        except InputError:
            continue  # refused when that context itself is loaded
        pairs.append((name, other.name))
    check_collisions(pairs, only=set(tables))
    return tables


def route(
    destinations: CacheDestinations, contexts: list[ContextDef]
) -> tuple[dict[str, CacheSink], dict[str, InputError]]:
    """Each context's sink, and the contexts whose tenant's destination cannot be built.

    Raises the first such InputError when no context has a usable destination.
    """
    sinks: dict[str, CacheSink] = {}
    refused: dict[str, InputError] = {}
    for ctx in contexts:
        try:
            sinks[ctx.context.to_string()] = destinations.sink_for(ctx.tenant)
        except InputError as exc:
            refused[ctx.context.to_string()] = exc
    if refused and not sinks:
        raise next(iter(refused.values()))
    return sinks, refused


def _arguments(
    grain: Grain, tenant: str | None, metric: str | None, target: str, force: bool
) -> dict[str, Any]:
    """The arguments a cache-load run records (``force`` only when set)."""
    arguments: dict[str, Any] = {
        "grain": grain.value,
        "tenant": tenant,
        "metric": metric,
        "target": target,
    }
    if force:
        arguments["force"] = True
    return arguments


def run(
    engine: Engine,
    settings: Settings,
    sink: CacheSink | CacheDestinations,
    grain: Grain,
    tenant: str | None = None,
    metric: str | None = None,
    *,
    force: bool = False,
    on_start: Callable[[int], None] | None = None,
    on_result: Callable[[ContextCacheResult], None] | None = None,
    stop: threading.Event | None = None,
) -> CacheLoadResult:
    """Load every active context of ``grain`` (with the cache enabled) into its cache table.

    :param sink: one sink for every tenant, or each tenant's destination.
    Table names are checked before anything connects; a failing context does not stop the
    others. A context whose series did not change since its last successful load is reported
    unchanged (``force`` loads it anyway); a destination is connected to only when something
    is to be loaded into it. Raises InputError (a bad filter, an unsafe or shared table name,
    no selected tenant with a usable destination, or credentials refused by the only
    destination: nothing loaded), SinkError (the only destination is unreachable: nothing
    loaded) or StoreError.

    :param stop: set by SIGTERM/Ctrl-C: the batch in flight is finished (each table is
        replaced atomically), no other destination's starts, and the run is recorded
        ``interrupted``.
    """
    for value, what in ((tenant, "tenant"), (metric, "metric")):
        if value is not None:
            normalize_part(value, what)
    loader = CacheLoader(engine, settings, sink, grain, force=force)
    contexts = select_contexts(engine, settings, grain, tenant, metric, discover_first=False)
    others = (
        select_contexts(engine, settings, grain, discover_first=False) if tenant or metric else []
    )
    loader.prepare(contexts, others)
    result = CacheLoadResult(grain, loader.target, started_at=datetime.now(UTC))
    arguments = _arguments(grain, tenant, metric, loader.target, force)
    rc = RunContext.start(
        engine, "cache-load", arguments, lease_seconds=settings.lease_seconds, stop=stop
    )
    result.run_id = rc.run_id
    if on_start is not None:
        on_start(len(contexts))

    def summarize() -> tuple[str, dict[str, Any]]:
        result.finished_at = datetime.now(UTC)
        result.not_started = len(contexts) - len(result.contexts)
        result.interrupted = rc.stop.is_set()
        summary = result.summary()
        return str(summary["outcome"]), summary

    with rc.recording(summarize), bound_fields(**rc.fields(), grain=grain.value):
        try:
            if contexts:
                import pandas  # noqa: F401  (imported here so the first load's time excludes it)

                report = _Reporter(on_result)
                fields = {**rc.fields(), "grain": grain.value}
                loads = loader.load(contexts, on_result=report, stop=rc.stop.is_set, fields=fields)
                _finish(loader, loads, report)
                order = {c.context.to_string(): i for i, c in enumerate(contexts)}
                result.contexts.extend(report.results)
                result.contexts.sort(key=lambda r: order.get(r.context, 0))
        finally:
            loader.close()
    return result


class _Reporter:
    """Collects results from the groups' threads and passes each to ``on_result``."""

    def __init__(self, on_result: Callable[[ContextCacheResult], None] | None) -> None:
        self._on_result = on_result
        self._lock = threading.Lock()
        self.results: list[ContextCacheResult] = []

    def __call__(self, res: ContextCacheResult) -> None:
        with self._lock:
            self.results.append(res)
            if self._on_result is not None:
                self._on_result(res)


def _fail_unroutable(
    engine: Engine, ctx: ContextDef, target: str, error: InputError
) -> ContextCacheResult:
    """Record the failure of a context whose tenant's destination cannot be built."""
    res = ContextCacheResult(ctx.context.to_string(), ctx.grain, "", "failed")
    res.error, res.loaded_at = str(error), datetime.now(UTC)
    record(engine, ctx, target, res, context_fields(ctx, "", target))
    return res


def _finish(loader: CacheLoader, loads: list[DestinationLoad], report: _Reporter) -> None:
    """Record the contexts of destinations that could not be opened, or, when no destination
    could be opened and nothing else failed on its own, end the run with that error."""
    failed = [load for load in loads if load.open_error is not None]
    if failed and not any(load.opened for load in loads):
        errors = [load.open_error for load in failed if load.open_error is not None]
        refusal = next((e for e in errors if isinstance(e, InputError)), None)
        raise refusal or errors[0]
    loader.record_unopened(loads, report)


class CacheLoader:
    """Loads contexts' cache tables, each destination's in one batch (``cache-load`` and
    ``sync --cache-load``).

    :param sink: one sink for every tenant, or each tenant's destination.
    :param force: also load contexts whose series did not change since their last load.
    Connections a load opens stay open for the next (a sync loads in several batches) until
    :meth:`close`; a destination that could not be opened is not tried again in the run.
    """

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        sink: CacheSink | CacheDestinations,
        grain: Grain,
        *,
        force: bool = False,
    ) -> None:
        self._engine, self._settings, self._grain, self._force = engine, settings, grain, force
        self._destinations = (
            sink if isinstance(sink, CacheDestinations) else CacheDestinations.single(sink)
        )
        self._sessions = Sessions()
        self._sinks: dict[str, CacheSink] = {}  # per context
        self._refused: dict[str, InputError] = {}  # contexts whose destination cannot be built
        self._tables: dict[str, CacheTable] = {}
        self._held: list[DestinationLoad] = []  # released by record_unopened, or close
        self._held_lock = threading.Lock()

    @property
    def target(self) -> str:
        return self._destinations.target

    def prepare(self, contexts: list[ContextDef], others: list[ContextDef] | None = None) -> None:
        """Route each context to its sink and check the table names, before anything is done.

        :param others: the grain's other active contexts, whose tables must not share a name
            with these (default: read them).
        Raises InputError: an unsafe or shared table name, or no context with a usable
        destination (the first such destination's error).
        """
        if others is None:
            others = select_contexts(
                self._engine, self._settings, self._grain, discover_first=False
            )
        sinks, refused = route(self._destinations, contexts)
        self._tables.update(plan_tables(sinks, contexts, others))
        self._sinks.update(sinks)
        self._refused.update(refused)

    def load(
        self,
        contexts: list[ContextDef],
        *,
        on_result: Callable[[ContextCacheResult], None],
        stop: Callable[[], bool] | None = None,
        fields: dict[str, Any] | None = None,
    ) -> list[DestinationLoad]:
        """Load ``contexts``: each destination's in one batch, the destinations at once.

        A context whose tenant has no usable destination fails (recorded and reported). The
        contexts of a destination that could not be opened are returned in its load's
        ``unopened``, not recorded yet (:meth:`record_unopened`). When ``stop()`` is true, no
        other destination starts. ``fields``: the log fields of the run (bound in each thread).
        """
        groups: dict[str, list[Planned]] = {}
        for ctx in contexts:
            name = ctx.context.to_string()
            if name not in self._sinks and name not in self._refused:
                self._prepare_one(ctx)  # not prepared: its name is checked now
            if name in self._refused:
                on_result(_fail_unroutable(self._engine, ctx, self.target, self._refused[name]))
                continue
            plan = Planned(ctx, self._sinks[name], self._tables[name])
            groups.setdefault(plan.sink.destination, []).append(plan)
        run_fields = fields or {}

        def one(plans: list[Planned]) -> DestinationLoad:
            if stop is not None and stop():  # SIGTERM: a destination not started is left
                return DestinationLoad(plans[0].sink.destination)
            with bound_fields(**run_fields, destination=plans[0].sink.destination):
                done = load_destination(
                    self._engine,
                    plans,
                    self._sessions,
                    force=self._force,
                    on_result=on_result,
                    stop=stop,
                )
            with self._held_lock:
                self._held.append(done)  # its loads held for its unopened records, if any
            return done

        if len(groups) <= 1:
            return [one(plans) for plans in groups.values()]
        workers = max(1, min(len(groups), self._settings.workers))
        with ThreadPoolExecutor(workers, thread_name_prefix="cache-load") as pool:
            return list(pool.map(one, groups.values()))

    def _prepare_one(self, ctx: ContextDef) -> None:
        """Route and name one context; its InputError becomes its failure."""
        name = ctx.context.to_string()
        try:
            sink = self._destinations.sink_for(ctx.tenant)
            self._tables[name] = plan_tables(sink, [ctx])[name]
            self._sinks[name] = sink
        except InputError as exc:
            self._refused[name] = exc

    def record_unopened(
        self, loads: list[DestinationLoad], on_result: Callable[[ContextCacheResult], None]
    ) -> None:
        """Record and report the failed loads of destinations that could not be opened, while
        their loads are still held (then released): a load whose hold was lost meanwhile is
        reported, not recorded (another process may have recorded its success since)."""
        for load in loads:
            try:
                kept = load.held is None or load.held.alive()
                for ctx, res in load.unopened:
                    if kept:
                        fields = context_fields(ctx, res.table, self.target)
                        record(self._engine, ctx, self.target, res, fields)
                    on_result(res)
            finally:
                load.release()

    def load_many(
        self,
        contexts: list[ContextDef],
        stop: Callable[[], bool] | None = None,
        fields: dict[str, Any] | None = None,
    ) -> dict[str, ContextCacheResult]:
        """Load ``contexts`` (``sync --cache-load``): each one's result by name. Never raises:
        a destination that cannot be opened, or a crash, fails the loads it concerns alone.
        Contexts left unloaded because ``stop()`` was true are absent."""
        report = _Reporter(None)
        try:
            loads = self.load(contexts, on_result=report, stop=stop, fields=fields)
            self.record_unopened(loads, report)
        except Exception as exc:  # a bug: the loads not done fail, the sync stands
            log_event(log, "cache load crashed", logging.ERROR, exc_info=exc)
            done = {r.context for r in report.results}
            for ctx in contexts:
                if ctx.context.to_string() not in done:
                    res = ContextCacheResult(ctx.context.to_string(), ctx.grain, "", "failed")
                    res.error = f"cache load crashed: {type(exc).__name__}: {exc}"
                    report(res)
        finally:
            self._release_held()
        return {r.context: r for r in report.results}

    def close(self) -> None:
        """Close the connections opened, if any, and release the loads still held."""
        self._release_held()
        self._sessions.close()

    def _release_held(self) -> None:
        with self._held_lock:
            loads, self._held = self._held, []
        for load in loads:
            load.release()
