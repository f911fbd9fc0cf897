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

from sqlalchemy import Engine

from fulcrum_sync.catalog import ContextDef
from fulcrum_sync.domain import (
    ContextCacheResult,
    FulcrumError,
    StoreError,
    Window,
    is_outage,
)
from fulcrum_sync.logs import log_event
from fulcrum_sync.services.cache.records import (
    context_fields,
    ids,
    record,
    settled_unchanged,
    unchanged,
)
from fulcrum_sync.sinks.base import CacheBatch, CacheSink, LoadStats
from fulcrum_sync.sinks.identifiers import CacheTable
from fulcrum_sync.store import cache as cache_store
from fulcrum_sync.store import cache_claims

log = logging.getLogger(__name__)

EMPTY_REASON = "no stored rows (run sync first); the cache table was left as it was"
# Two processes that both see a context changed (the pods of one sync): one loads it.
LOADING_ELSEWHERE = "being loaded by another running process (it records that load)"
# This process's hold on its loads ended (its lock connection was terminated or cut).
LOCK_LOST = "its load lock was lost before loading (nothing loaded); the next run loads it"
LOCK_LOST_LOADING = (
    "its load lock was lost while loading: another process may have loaded this table too, "
    "so this load is not vouched for; the next run loads it again"
)


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
    recorded as those contexts' failures. Their loads stay ``held`` until then (so no other
    process's success recorded meanwhile is overwritten): :meth:`release` after.
    """

    destination: str
    results: list[ContextCacheResult] = field(default_factory=list)
    unopened: list[tuple[ContextDef, ContextCacheResult]] = field(default_factory=list)
    open_error: FulcrumError | None = None
    opened: bool = False
    held: cache_claims.HeldLoads | None = None

    def release(self) -> None:
        """Release the loads kept for the ``unopened`` records (none: nothing to do)."""
        if self.held is not None:
            self.held.release()
            self.held = None


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
    others' loads are taken (store/cache_claims.py's ``hold_loads``: one another process holds is
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
            out.held, held = held, None  # kept until they are recorded (the caller releases)
            return out
        out.opened = True
        _load_batch(engine, held, out, pending, on_result)
    finally:
        if held is not None:  # after the loads were recorded: who takes one next finds it done
            held.release()
    return out


def _hold(
    engine: Engine,
    pending: list[tuple[Planned, ContextCacheResult]],
    on_result: Callable[[ContextCacheResult], None] | None,
    out: DestinationLoad,
) -> cache_claims.HeldLoads | None:
    """Take the pending loads no other process holds; None (each failed) when the state
    database cannot say."""
    target = pending[0][0].sink.target
    try:
        return cache_claims.hold_loads(engine, target, [ids(p.ctx) for p, _ in pending])
    except Exception as exc:
        for plan, res in pending:
            _fail(engine, plan, res, exc, on_result, out)
        return None


def _held_changes(
    held: cache_claims.HeldLoads,
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
        key = ids(plan.ctx)
        fields = context_fields(plan.ctx, plan.table.qualified, plan.sink.target)
        if not held.holds(key):
            res.status, res.skip_reason = "skipped", LOADING_ELSEWHERE
            log_event(log, "cache load skipped", skip_reason=res.skip_reason, **fields)
            _report(out, res, on_result)
            continue
        baseline = held.baselines.get(key) if held.baselines is not None else None
        if baseline is not None and settled_unchanged(
            res, baseline, fields, force, time.perf_counter()
        ):
            _report(out, res, on_result)
            continue
        kept.append((plan, res))
    return kept


def _load_batch(
    engine: Engine,
    held: cache_claims.HeldLoads,
    out: DestinationLoad,
    pending: list[tuple[Planned, ContextCacheResult]],
    on_result: Callable[[ContextCacheResult], None] | None,
) -> None:
    """Read each pending context's rows into one batch, load it, record each outcome.

    Each table is added to the batch only while the loads are still ``held``: once their
    hold is lost (the lock connection ended), another process may take them, so the tables
    not added yet are left (reported skipped, not recorded: :func:`_lost`), the batch is not
    loaded, and the tables added (a serial batch loaded them already) fail, recorded so the
    next run loads them again. The hold is checked again once the batch is loaded.
    """
    started = time.perf_counter()
    batch = pending[0][0].sink.batch()
    staged: list[tuple[Planned, ContextCacheResult]] = []
    lost = False
    try:
        for i, (plan, res) in enumerate(pending):
            if not held.alive():
                lost = True
                _lost(out, pending[i:], on_result)
                break
            if _stage(engine, batch, plan, res, on_result, out):
                staged.append((plan, res))
        if lost:
            outcomes: dict[str, LoadStats | Exception] = {}
        else:
            try:
                outcomes = dict(batch.load())
            except Exception as exc:  # nothing of the batch was loaded
                outcomes = {plan.table.qualified: exc for plan, _ in staged}
    finally:
        batch.close()
    if staged and (lost or not held.alive()):  # another process may have loaded them too
        log_event(log, "cache load lock lost", logging.WARNING, error=LOCK_LOST_LOADING)
        outcomes = {plan.table.qualified: StoreError(LOCK_LOST_LOADING) for plan, _ in staged}
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


def _stage(
    engine: Engine,
    batch: CacheBatch,
    plan: Planned,
    res: ContextCacheResult,
    on_result: Callable[[ContextCacheResult], None] | None,
    out: DestinationLoad,
) -> bool:
    """Read the context's rows into ``batch``; False (its failure recorded) when it cannot."""
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
        return False
    return True


def _lost(
    out: DestinationLoad,
    staged: list[tuple[Planned, ContextCacheResult]],
    on_result: Callable[[ContextCacheResult], None] | None,
) -> None:
    """The loads were lost before the batch: report each skipped, load and record nothing
    (the record stays what it was, or what the process that took them writes)."""
    for plan, res in staged:
        res.status, res.skip_reason, res.window = "skipped", LOCK_LOST, None
        fields = context_fields(plan.ctx, plan.table.qualified, plan.sink.target)
        log_event(log, "cache load skipped", logging.WARNING, skip_reason=LOCK_LOST, **fields)
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
