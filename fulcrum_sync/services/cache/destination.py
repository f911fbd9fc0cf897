"""Load the cache tables of one destination: its changed contexts in one batch, over the
run's one connection to it (opened on first need, kept open for the run).

``cache-load`` and ``sync --cache-load`` group their contexts by destination (a tenant's own
``cache:`` or the settings') and run the groups at once (services/cache/load.py); this module
is one group. A destination that cannot be opened (unreachable, or its credentials refused)
fails every context of its group that had something to load, and no other group.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from fulcrum_sync.catalog import ContextDef
from fulcrum_sync.domain import (
    ContextCacheResult,
    DependencyError,
    FulcrumError,
    Window,
    is_outage,
)
from fulcrum_sync.logs import log_event
from fulcrum_sync.sinks.base import CacheSink
from fulcrum_sync.sinks.identifiers import CacheTable
from fulcrum_sync.store import cache as cache_store

log = logging.getLogger(__name__)

EMPTY_REASON = "no stored rows (run sync first); the cache table was left as it was"
# Two processes that both see a context changed (the pods of one sync): one loads it.
LOADING_ELSEWHERE = "being loaded by another running process (it records that load)"


class Sessions:
    """The sinks a run opened, kept open until :meth:`close`; a destination that could not be
    opened is remembered and not tried again in the run (thread-safe: destinations load at
    once, each in its thread)."""

    def __init__(self) -> None:
        self._open: dict[int, CacheSink] = {}
        self._dead: dict[str, FulcrumError] = {}  # destination: why opening it failed
        self._lock = threading.Lock()

    def open(self, sink: CacheSink) -> None:
        """Open ``sink`` once; raise its FulcrumError (or the one remembered for its
        destination)."""
        with self._lock:
            dead = self._dead.get(sink.destination)
            if dead is None and id(sink) in self._open:
                return
        if dead is not None:
            raise dead
        try:
            sink.open()
        except FulcrumError as exc:
            with self._lock:
                self._dead.setdefault(sink.destination, exc)
            raise
        with self._lock:
            self._open[id(sink)] = sink

    def close(self) -> None:
        """Close every sink opened (a shared connection twice is harmless)."""
        with self._lock:
            sinks, self._open = list(self._open.values()), {}
        for sink in sinks:
            with contextlib.suppress(Exception):
                sink.close()


@dataclass(frozen=True, slots=True)
class Planned:
    """A context to load, its sink and its table."""

    ctx: ContextDef
    sink: CacheSink
    table: CacheTable


@dataclass(slots=True)
class DestinationLoad:
    """What loading one destination's contexts did.

    ``unopened`` holds the failed results of contexts that needed the destination when it
    could not be opened (``open_error``); they are not recorded yet: the run decides
    whether a destination nobody could reach ends it (nothing loaded anywhere) or is
    recorded as those contexts' failures.
    """

    destination: str
    results: list[ContextCacheResult] = field(default_factory=list)
    unopened: list[tuple[ContextDef, ContextCacheResult]] = field(default_factory=list)
    open_error: FulcrumError | None = None
    opened: bool = False


def load_destination(
    engine: Engine,
    plans: list[Planned],
    sessions: Sessions,
    *,
    force: bool,
    on_result: Callable[[ContextCacheResult], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> DestinationLoad:
    """Load ``plans`` (all of one destination) together: one connection, one batch.

    Contexts whose series did not change are reported first, without connecting. The
    others' loads are taken (store/cache.py's ``hold_loads``: one another process holds is
    reported skipped, one it loaded meanwhile unchanged) and held until recorded; their rows
    are read from the state database into one batch, loaded together, and each recorded.
    Never raises for a context's failure; when the destination cannot be
    opened (``sessions`` opens it, and keeps it open for the run), the contexts that needed
    it are returned in ``unopened`` with the error. When ``stop()`` is true (SIGTERM) before
    the batch starts, the changed contexts are left unloaded and unreported (the run counts
    them not started).
    """
    out = DestinationLoad(plans[0].sink.destination if plans else "")
    pending: list[tuple[Planned, ContextCacheResult]] = []
    for plan in plans:
        res = _result(plan)
        fields = context_fields(plan.ctx, plan.table.qualified, plan.sink.target)
        try:
            if unchanged(engine, plan.ctx, plan.sink.target, res, fields, force):
                _report(out, res, on_result)
                continue
        except Exception as exc:  # the state database: this context fails, the others go on
            _fail(engine, plan, res, exc, on_result, out)
            continue
        pending.append((plan, res))
    if not pending or (stop is not None and stop()):
        return out
    held = _hold(engine, pending, on_result, out)
    if held is None:
        return out
    try:
        pending = _held_changes(held, pending, force, on_result, out)
        if not pending:
            return out
        try:
            for sink in {id(p.sink): p.sink for p, _ in pending}.values():
                sessions.open(sink)
        except FulcrumError as exc:
            out.open_error = exc
            out.unopened = [(p.ctx, _unopened(p, exc)) for p, _ in pending]
            return out
        out.opened = True
        _load_batch(engine, out, pending, on_result)
    finally:
        held.release()  # after the loads were recorded: who takes one next finds it done
    return out


def _ids(ctx: ContextDef) -> tuple[int, str, str]:
    return (ctx.tenant.tenant_id, ctx.metric.metric_id, ctx.grain.value)


def _hold(
    engine: Engine,
    pending: list[tuple[Planned, ContextCacheResult]],
    on_result: Callable[[ContextCacheResult], None] | None,
    out: DestinationLoad,
) -> cache_store.HeldLoads | None:
    """Take the pending loads no other process holds; None (each failed) when the state
    database cannot say."""
    target = pending[0][0].sink.target
    try:
        return cache_store.hold_loads(engine, target, [_ids(p.ctx) for p, _ in pending])
    except Exception as exc:
        for plan, res in pending:
            _fail(engine, plan, res, exc, on_result, out)
        return None


def _held_changes(
    held: cache_store.HeldLoads,
    pending: list[tuple[Planned, ContextCacheResult]],
    force: bool,
    on_result: Callable[[ContextCacheResult], None] | None,
    out: DestinationLoad,
) -> list[tuple[Planned, ContextCacheResult]]:
    """The pending loads this process took that still have a change to load.

    A load another process holds is reported skipped (that process records it); one taken
    after another process loaded the same version is reported unchanged.
    """
    kept: list[tuple[Planned, ContextCacheResult]] = []
    for plan, res in pending:
        key = _ids(plan.ctx)
        fields = context_fields(plan.ctx, plan.table.qualified, plan.sink.target)
        if not held.holds(key):
            res.status, res.skip_reason = "skipped", LOADING_ELSEWHERE
            log_event(log, "cache load skipped", skip_reason=res.skip_reason, **fields)
            _report(out, res, on_result)
            continue
        baseline = held.baselines.get(key) if held.baselines is not None else None
        if baseline is not None:
            res.data_version = baseline.version
            if baseline.unchanged and not force:
                _mark_unchanged(res, baseline, fields, time.perf_counter())
                _report(out, res, on_result)
                continue
        kept.append((plan, res))
    return kept


def _load_batch(
    engine: Engine,
    out: DestinationLoad,
    pending: list[tuple[Planned, ContextCacheResult]],
    on_result: Callable[[ContextCacheResult], None] | None,
) -> None:
    """Read each pending context's rows into one batch, load it, record each outcome."""
    started = time.perf_counter()
    batch = pending[0][0].sink.batch()
    staged: list[tuple[Planned, ContextCacheResult]] = []
    try:
        for plan, res in pending:
            ctx = plan.ctx
            try:
                frame = cache_store.read_cache_frame(
                    engine, ctx.tenant.tenant_id, ctx.metric.metric_id, ctx.grain.value
                )
                if frame.empty:
                    batch.ensure(plan.table)
                    res.status, res.skip_reason = "skipped", EMPTY_REASON
                else:
                    batch.add(plan.table, frame, ctx.grain, res.loaded_at or datetime.now(UTC))
                    res.window = Window(frame["date"].min(), frame["date"].max())
            except Exception as exc:
                _fail(engine, plan, res, exc, on_result, out)
                continue
            staged.append((plan, res))
        try:
            outcomes = batch.load()
        except Exception as exc:  # nothing of the batch was loaded
            outcomes = {plan.table.qualified: exc for plan, _ in staged}
    finally:
        batch.close()
    share = round((time.perf_counter() - started) / max(1, len(staged)), 4)
    for plan, res in staged:
        outcome = outcomes.get(plan.table.qualified)
        res.seconds = share  # a batch's time, shared evenly by its tables
        if isinstance(outcome, Exception):
            _fail(engine, plan, res, outcome, on_result, out)
            continue
        if outcome is not None and res.status != "skipped":
            res.status, res.rows = "succeeded", outcome.rows
            res.size_mb, res.size_estimated = outcome.size_mb, outcome.size_estimated
        fields = context_fields(plan.ctx, plan.table.qualified, plan.sink.target)
        record(engine, plan.ctx, plan.sink.target, res, fields)
        _report(out, res, on_result)


def _result(plan: Planned) -> ContextCacheResult:
    res = ContextCacheResult(
        plan.ctx.context.to_string(), plan.ctx.grain, plan.table.qualified, "failed"
    )
    res.loaded_at = datetime.now(UTC)
    return res


def _report(
    out: DestinationLoad,
    res: ContextCacheResult,
    on_result: Callable[[ContextCacheResult], None] | None,
) -> None:
    out.results.append(res)
    if on_result is not None:
        on_result(res)


def _fail(
    engine: Engine,
    plan: Planned,
    res: ContextCacheResult,
    exc: Exception,
    on_result: Callable[[ContextCacheResult], None] | None,
    out: DestinationLoad,
) -> None:
    """Record ``res`` as failed by ``exc`` (a crash is logged with its traceback)."""
    fields = context_fields(plan.ctx, plan.table.qualified, plan.sink.target)
    res.status, res.error = "failed", str(exc) or type(exc).__name__
    res.dependency_failure = is_outage(exc)
    if not isinstance(exc, FulcrumError):
        log_event(log, "cache load crashed", logging.ERROR, exc_info=exc, **fields)
    record(engine, plan.ctx, plan.sink.target, res, fields)
    _report(out, res, on_result)


def _unopened(plan: Planned, error: FulcrumError) -> ContextCacheResult:
    res = _result(plan)
    res.error, res.dependency_failure = str(error), is_outage(error)
    return res


def unchanged(
    engine: Engine,
    ctx: ContextDef,
    target: str,
    res: ContextCacheResult,
    fields: dict[str, Any],
    force: bool,
) -> bool:
    """Fill ``res`` as ``unchanged`` and return True when the context's series did not
    change since its last successful load into ``target`` (never when ``force``).

    Reads the data version before the rows: a write in between raises the version, so the
    next load sees a change and loads again (never the other way round).
    """
    started = time.perf_counter()
    baseline = cache_store.read_baseline(engine, *_ids(ctx), target)
    res.data_version = baseline.version
    if not baseline.unchanged or force:
        return False
    _mark_unchanged(res, baseline, fields, started)
    return True


def _mark_unchanged(
    res: ContextCacheResult,
    baseline: cache_store.LoadBaseline,
    fields: dict[str, Any],
    started: float,
) -> None:
    res.status, res.seconds = "unchanged", round(time.perf_counter() - started, 4)
    loaded = f"{baseline.last_loaded_at:%Y-%m-%d %H:%M:%S} UTC"
    res.skip_reason = f"unchanged since its load of {loaded} (data version {baseline.version})"
    log_event(log, "cache load unchanged", data_version=res.data_version, **fields)


def record(
    engine: Engine, ctx: ContextDef, target: str, res: ContextCacheResult, fields: dict[str, Any]
) -> None:
    """Store ``res`` as the context's latest load and log it (a failure at ``error``)."""
    try:
        cache_store.record_cache_load(engine, _record(ctx, target, res))
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


def context_fields(ctx: ContextDef, table: str, target: str) -> dict[str, Any]:
    """The log fields of one context's load."""
    return {
        "tenant": ctx.tenant.identifier,
        "metric": ctx.metric.metric_id,
        "grain": ctx.grain.value,
        "table": table,
        "target": target,
    }


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
