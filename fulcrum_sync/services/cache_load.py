"""The ``cache-load`` service: copy each context's stored series into its cache table.

A context whose stored series did not change since its last successful load into the target
(the same data version: store/versions.py) is reported ``unchanged`` and not copied again,
unless forced. ``sync --cache-load`` loads each context right after its sync and patterns
through :class:`ChainedLoad`, with the same code.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from fulcrum_sync.catalog import ContextDef
from fulcrum_sync.config import Settings
from fulcrum_sync.domain import (
    CacheLoadResult,
    ContextCacheResult,
    DependencyError,
    FulcrumError,
    Grain,
    InputError,
    Window,
    is_outage,
)
from fulcrum_sync.logs import bound_fields, log_event
from fulcrum_sync.services.runner import RunContext
from fulcrum_sync.services.selection import select_contexts
from fulcrum_sync.sinks.base import CacheSink
from fulcrum_sync.sinks.identifiers import CacheTable, check_collisions, normalize_part
from fulcrum_sync.store import cache as cache_store

log = logging.getLogger(__name__)

EMPTY_REASON = "no stored rows (run sync first); the cache table was left as it was"


class _Session:
    """A sink opened on first use (a run with every context unchanged never connects)."""

    def __init__(self, sink: CacheSink) -> None:
        self.sink = sink
        self.opened = False
        self.error: str | None = None  # why opening failed (chained loads stop trying)

    def open(self) -> None:
        if not self.opened:
            self.sink.open()
            self.opened = True

    def close(self) -> None:
        if self.opened:
            self.opened = False
            self.sink.close()


def plan_tables(
    sink: CacheSink, selected: list[ContextDef], others: list[ContextDef] | None = None
) -> dict[str, CacheTable]:
    """Return ``{tenant::metric: table}`` for ``selected``; run no SQL.

    Raises InputError when a name is unsafe or two contexts (among ``selected`` and
    ``others``, the rest of the grain's active contexts) would share a table.
    """
    tables = {
        c.context.to_string(): sink.table_for(c.tenant.identifier, c.metric.metric_id, c.grain)
        for c in selected
    }
    pairs = [(ctx, tbl.name) for ctx, tbl in tables.items()]
    for c in others or []:
        name = c.context.to_string()
        if name in tables:
            continue
        try:
            other = sink.table_for(c.tenant.identifier, c.metric.metric_id, c.grain)
        except InputError:
            continue  # refused when that context itself is loaded
        pairs.append((name, other.name))
    check_collisions(pairs, only=set(tables))
    return tables


def run(
    engine: Engine,
    settings: Settings,
    sink: CacheSink,
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

    Table names are checked before anything connects; a failing context does not stop the
    others. A context whose series did not change since its last successful load is reported
    unchanged (``force`` loads it anyway); the target is connected to only when something is
    to be loaded. Raises InputError (a bad filter, an unsafe or shared table name: nothing
    loaded), SinkError (the target is unreachable: nothing loaded) or StoreError.

    :param stop: set by SIGTERM/Ctrl-C: the table in flight is finished (each load replaces
        its table atomically), no other starts, and the run is recorded ``interrupted``.
    """
    for value, what in ((tenant, "tenant"), (metric, "metric")):
        if value is not None:
            normalize_part(value, what)
    contexts = select_contexts(engine, settings, grain, tenant, metric, discover_first=False)
    others = (
        select_contexts(engine, settings, grain, discover_first=False) if tenant or metric else []
    )
    tables = plan_tables(sink, contexts, others)
    result = CacheLoadResult(grain, sink.target, started_at=datetime.now(UTC))
    arguments: dict[str, Any] = {
        "grain": grain.value,
        "tenant": tenant,
        "metric": metric,
        "target": sink.target,
    }
    if force:
        arguments["force"] = True
    rc = RunContext.start(
        engine, "cache-load", arguments, lease_seconds=settings.lease_seconds, stop=stop
    )
    result.run_id = rc.run_id
    if on_start is not None:
        on_start(len(contexts))

    def summarize() -> tuple[str, dict[str, Any]]:
        result.finished_at = datetime.now(UTC)
        result.not_started = len(contexts) - len(result.contexts)
        result.interrupted = rc.stop.is_set() and result.not_started > 0
        summary = result.summary()
        return str(summary["outcome"]), summary

    with rc.recording(summarize):
        if contexts:
            import pandas  # noqa: F401  (imported here so the first load's time excludes it)

            session = _Session(sink)
            try:
                for ctx in contexts:
                    if rc.stop.is_set():
                        break  # SIGTERM: the tables not started are left as they are
                    table = tables[ctx.context.to_string()]
                    with bound_fields(**rc.fields(), grain=grain.value):
                        outcome = load_context(engine, session, ctx, table, force=force)
                    result.contexts.append(outcome)
                    if on_result is not None:
                        on_result(outcome)
            finally:
                session.close()
    return result


class ChainedLoad:
    """Load each context's cache table right after its sync (``sync --cache-load``).

    Loads are serialized (one connection to the target, shared by the sync's workers) and
    connect on the first context that changed. A target that cannot be reached fails each
    context's load (recorded; the sync itself stands) without trying again in this run.
    """

    def __init__(self, engine: Engine, settings: Settings, sink: CacheSink, grain: Grain) -> None:
        self._engine, self._settings, self._grain = engine, settings, grain
        self._session = _Session(sink)
        self._tables: dict[str, CacheTable] = {}
        self._lock = threading.Lock()

    @property
    def target(self) -> str:
        return self._session.sink.target

    def prepare(self, contexts: list[ContextDef]) -> None:
        """Check the contexts' table names before the sync starts (InputError: nothing done)."""
        others = select_contexts(self._engine, self._settings, self._grain, discover_first=False)
        self._tables = plan_tables(self._session.sink, contexts, others)

    def load(self, ctx: ContextDef) -> ContextCacheResult:
        """Load ``ctx`` if its series changed since its last successful load; never raises."""
        table = self._tables.get(ctx.context.to_string())
        if table is None:  # not prepared: the names were not checked
            table = plan_tables(self._session.sink, [ctx])[ctx.context.to_string()]
        with self._lock:
            return load_context(self._engine, self._session, ctx, table, isolate_open=True)

    def close(self) -> None:
        """Close the connection to the target, if one was opened."""
        with self._lock:
            self._session.close()


def load_context(
    engine: Engine,
    session: _Session,
    ctx: ContextDef,
    table: CacheTable,
    *,
    force: bool = False,
    isolate_open: bool = False,
) -> ContextCacheResult:
    """Compare, read, load and record one context; never raises once the target is open.

    Opening the target (on the first context to load) raises SinkError, unless
    ``isolate_open``: then that context's load fails, and so do the next ones in this run.
    """
    sink = session.sink
    name = ctx.context.to_string()
    fields: dict[str, Any] = {
        "tenant": ctx.tenant.identifier,
        "metric": ctx.metric.metric_id,
        "grain": ctx.grain.value,
        "table": table.qualified,
        "target": sink.target,
    }
    res = ContextCacheResult(name, ctx.grain, table.qualified, "failed")
    res.loaded_at = datetime.now(UTC)
    started = time.perf_counter()
    ids = (ctx.tenant.tenant_id, ctx.metric.metric_id, ctx.grain.value)
    unreachable = False  # opening the target failed: raised unless ``isolate_open``
    try:
        # Read before the rows: a write in between raises the version, so the next load
        # sees a change and loads again (never the other way round).
        baseline = cache_store.read_baseline(engine, *ids, sink.target)
        res.data_version = baseline.version
        if baseline.unchanged and not force:
            res.status, res.seconds = "unchanged", round(time.perf_counter() - started, 4)
            loaded = f"{baseline.last_loaded_at:%Y-%m-%d %H:%M:%S} UTC"
            res.skip_reason = (
                f"unchanged since its load of {loaded} (data version {baseline.version})"
            )
            log_event(log, "cache load unchanged", data_version=res.data_version, **fields)
            return res
        if session.error is not None:
            raise DependencyError(session.error)
        try:
            session.open()
        except FulcrumError as exc:
            unreachable = not isolate_open
            session.error = str(exc)
            raise
        frame = cache_store.read_cache_frame(
            engine, ctx.tenant.tenant_id, ctx.metric.metric_id, ctx.grain.value
        )
        if frame.empty:
            sink.ensure_table(table)
            res.status, res.skip_reason = "skipped", EMPTY_REASON
        else:
            stats = sink.replace(table, frame, ctx.grain, res.loaded_at)
            res.status, res.rows = "succeeded", stats.rows
            res.size_mb, res.size_estimated = stats.size_mb, stats.size_estimated
            res.window = Window(frame["date"].min(), frame["date"].max())
    except Exception as exc:  # isolation: one context's failure never stops the others
        if unreachable:
            raise  # the target is unreachable or refused us: nothing was loaded
        res.error = str(exc) or type(exc).__name__
        res.dependency_failure = is_outage(exc)
        if not res.dependency_failure:
            log_event(log, "cache load crashed", logging.ERROR, exc_info=exc, **fields)
    res.seconds = round(time.perf_counter() - started, 4)
    try:
        cache_store.record_cache_load(engine, _record(ctx, sink.target, res))
    except DependencyError as exc:
        res.status, res.dependency_failure = "failed", True
        res.error = f"{res.error + '; ' if res.error else ''}cannot record the load: {exc}"
    log_event(
        log,
        f"cache load {res.status}",
        logging.ERROR if res.status == "failed" else logging.INFO,
        counts={"rows": res.rows},
        size_mb=res.size_mb,
        duration=round(res.seconds, 3),
        error=res.error,
        **fields,
    )
    return res


def _record(ctx: ContextDef, target: str, res: ContextCacheResult) -> cache_store.CacheLoadRecord:
    return cache_store.CacheLoadRecord(
        tenant_id=ctx.tenant.tenant_id,
        metric_id=ctx.metric.metric_id,
        grain=ctx.grain.value,
        target=target,
        table_name=res.table,
        rows_loaded=res.rows,
        size_mb=res.size_mb,
        window_start=res.window.start if res.window else None,
        window_end=res.window.end if res.window else None,
        status=res.status,
        error=res.error or res.skip_reason,
        loaded_at=res.loaded_at or datetime.now(UTC),
        duration_seconds=res.seconds,
        data_version=res.data_version,
    )
