"""The ``cache-load`` service: copy each context's stored series into its cache table.

A context whose stored series did not change since its last successful load into the target
(the same data version: store/versions.py) is reported ``unchanged`` and not copied again,
unless forced. ``sync --cache-load`` loads each context right after its sync and patterns
through :class:`ChainedLoad`, with the same code.

Each tenant loads into its destination (sinks/destinations.py): its own ``cache:`` or the
settings'. Contexts are grouped by destination; each group runs on one connection
(services/cache/destination.py), and the groups run at once. A tenant whose destination
cannot be built (a missing variable or file) fails alone, naming the fix; so does a
destination that refuses its credentials or cannot be reached, unless it is the only one
(then the run ends with its error: exit 2 for a refusal or a missing secret, 3 unreachable).
"""

from __future__ import annotations

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
from fulcrum_sync.logs import bound_fields
from fulcrum_sync.services.cache.destination import (
    EMPTY_REASON,
    DestinationLoad,
    Planned,
    Session,
    context_fields,
    load_context,
    load_destination,
    record,
)
from fulcrum_sync.services.contexts.selection import select_contexts
from fulcrum_sync.services.jobs.runner import RunContext
from fulcrum_sync.sinks.base import CacheSink
from fulcrum_sync.sinks.destinations import CacheDestinations
from fulcrum_sync.sinks.identifiers import CacheTable, check_collisions, normalize_part

__all__ = ["EMPTY_REASON", "ChainedLoad", "plan_tables", "run"]


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
    destinations = sink if isinstance(sink, CacheDestinations) else CacheDestinations.single(sink)
    contexts = select_contexts(engine, settings, grain, tenant, metric, discover_first=False)
    others = (
        select_contexts(engine, settings, grain, discover_first=False) if tenant or metric else []
    )
    sinks, refused = route(destinations, contexts)
    tables = plan_tables(sinks, contexts, others)
    result = CacheLoadResult(grain, destinations.target, started_at=datetime.now(UTC))
    arguments = _arguments(grain, tenant, metric, destinations.target, force)
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
        if contexts:
            import pandas  # noqa: F401  (imported here so the first load's time excludes it)

            report = _Reporter(on_result)
            for ctx in contexts:
                if ctx.context.to_string() in refused:
                    report(_fail_unroutable(engine, ctx, destinations.target, refused))
            groups: dict[str, list[Planned]] = {}
            for ctx in contexts:
                name = ctx.context.to_string()
                if name in sinks:
                    plan = Planned(ctx, sinks[name], tables[name])
                    groups.setdefault(plan.sink.destination, []).append(plan)
            loads = _load_groups(engine, settings, rc, grain, groups, force, report)
            _finish(engine, result, loads, report)
            order = {c.context.to_string(): i for i, c in enumerate(contexts)}
            result.contexts.extend(report.results)
            result.contexts.sort(key=lambda r: order.get(r.context, 0))
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
    engine: Engine, ctx: ContextDef, target: str, refused: dict[str, InputError]
) -> ContextCacheResult:
    """Record the failure of a context whose tenant's destination cannot be built."""
    res = ContextCacheResult(ctx.context.to_string(), ctx.grain, "", "failed")
    res.error, res.loaded_at = str(refused[ctx.context.to_string()]), datetime.now(UTC)
    record(engine, ctx, target, res, context_fields(ctx, "", target))
    return res


def _load_groups(
    engine: Engine,
    settings: Settings,
    rc: RunContext,
    grain: Grain,
    groups: dict[str, list[Planned]],
    force: bool,
    report: _Reporter,
) -> list[DestinationLoad]:
    """Load each destination's group; several destinations at once (one thread each)."""
    fields = {**rc.fields(), "grain": grain.value}

    def one(plans: list[Planned]) -> DestinationLoad:
        if rc.stop.is_set():  # SIGTERM: a destination not started is left as it is
            return DestinationLoad(plans[0].sink.destination)
        with bound_fields(**fields, destination=plans[0].sink.destination):
            return load_destination(engine, plans, force=force, on_result=report, stop=rc.stop)

    if len(groups) <= 1:
        return [one(plans) for plans in groups.values()]
    workers = max(1, min(len(groups), settings.workers))
    with ThreadPoolExecutor(workers, thread_name_prefix="cache-load") as pool:
        return list(pool.map(one, groups.values()))


def _finish(
    engine: Engine, result: CacheLoadResult, loads: list[DestinationLoad], report: _Reporter
) -> None:
    """Record the contexts of destinations that could not be opened, or, when no destination
    could be opened and nothing else failed on its own, end the run with that error."""
    failed = [load for load in loads if load.open_error is not None]
    if failed and not any(load.opened for load in loads):
        errors = [load.open_error for load in failed if load.open_error is not None]
        refusal = next((e for e in errors if isinstance(e, InputError)), None)
        raise refusal or errors[0]
    for load in failed:
        for ctx, res in load.unopened:
            record(engine, ctx, result.target, res, context_fields(ctx, res.table, result.target))
            report(res)


class ChainedLoad:
    """Load each context's cache table right after its sync (``sync --cache-load``).

    Loads to one destination are serialized (one connection, shared by the sync's workers)
    and connect on the first context that changed; loads to different destinations may run
    at once. A destination that cannot be reached fails each of its contexts' loads
    (recorded; the sync itself stands) without trying again in this run; a tenant whose
    destination cannot be built fails its loads naming the fix.
    """

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        sink: CacheSink | CacheDestinations,
        grain: Grain,
    ) -> None:
        self._engine, self._settings, self._grain = engine, settings, grain
        self._destinations = (
            sink if isinstance(sink, CacheDestinations) else CacheDestinations.single(sink)
        )
        self._sessions: dict[int, Session] = {}  # per sink (tenants of a destination share)
        self._locks: dict[str, threading.Lock] = {}  # per destination
        self._dead: dict[str, str] = {}  # destinations that could not be opened: why
        self._tables: dict[str, CacheTable] = {}
        self._lock = threading.Lock()

    @property
    def target(self) -> str:
        return self._destinations.target

    def prepare(self, contexts: list[ContextDef]) -> None:
        """Check the contexts' table names before the sync starts (InputError: nothing done).

        Also raises the InputError of a destination when no context has a usable one.
        """
        others = select_contexts(self._engine, self._settings, self._grain, discover_first=False)
        sinks, _refused = route(self._destinations, contexts)
        self._tables = plan_tables(sinks, contexts, others)

    def load(self, ctx: ContextDef) -> ContextCacheResult:
        """Load ``ctx`` if its series changed since its last successful load; never raises."""
        name = ctx.context.to_string()
        with self._lock:
            try:
                sink = self._destinations.sink_for(ctx.tenant)
            except InputError as exc:
                return _fail_unroutable(self._engine, ctx, self.target, {name: exc})
            session = self._sessions.setdefault(id(sink), Session(sink))
            lock = self._locks.setdefault(sink.destination, threading.Lock())
        table = self._tables.get(name)
        if table is None:  # not prepared: the names were not checked
            table = plan_tables(sink, [ctx])[name]
        with lock:
            session.error = session.error or self._dead.get(sink.destination)
            res = load_context(self._engine, session, ctx, table, isolate_open=True)
            if session.error is not None:
                self._dead[sink.destination] = session.error
            return res

    def close(self) -> None:
        """Close the connections to the destinations, if any was opened."""
        with self._lock:
            for session in self._sessions.values():
                session.close()
