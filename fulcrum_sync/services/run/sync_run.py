"""One ``sync`` run over the selected contexts of a grain, step by step.

:class:`SyncRun` holds what the run shares (engine, source, request, the catch-up plan, the
run record) so that each step is a method: :meth:`~SyncRun.select` the contexts,
:meth:`~SyncRun.claim` their keys, :meth:`~SyncRun.fetch` and store each context (one
transaction, alone or with a batch of others: services/run/write_batch.py, that also
completes its key), run its patterns, queue its :meth:`~SyncRun.cache` table, and
:meth:`~SyncRun.record` the run. A context behind (``--catch-up``) takes
:meth:`~SyncRun.catch_up` instead.

With ``--cache-load`` the queued contexts' tables load together (:meth:`~SyncRun.load_queued`,
services/run/cache_queue.py), each context reported once its own load is done.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

from sqlalchemy import Connection, Engine

from fulcrum_sync.catalog import ContextDef
from fulcrum_sync.collector import FirstUse
from fulcrum_sync.config import Settings
from fulcrum_sync.domain import (
    ContextResult,
    RefusedError,
    SourceStats,
    StopRequested,
    SyncRequest,
    SyncRunResult,
)
from fulcrum_sync.logs import bound_fields
from fulcrum_sync.services.contexts.selection import select_contexts
from fulcrum_sync.services.jobs.keys import ensure_expected, sync_item
from fulcrum_sync.services.jobs.leasing import keep_leases
from fulcrum_sync.services.jobs.runner import (
    DEFERRED,
    Deferred,
    KeyedWork,
    RunContext,
    run_keyed,
)
from fulcrum_sync.services.jobs.workers import map_workers
from fulcrum_sync.services.patterns.step import NO_PATTERNS, PatternStep
from fulcrum_sync.services.run import catch_up, fetch_plan
from fulcrum_sync.services.run.cache_queue import CACHE_BATCH, CacheLoads, CacheQueue
from fulcrum_sync.services.run.catch_up import CatchUpPlan
from fulcrum_sync.services.run.statuses import RunStatuses
from fulcrum_sync.services.run.sync_report import (
    ALREADY_DONE,
    BUSY,
    FINISHING_PATTERNS,
    all_refused,
    check_tenants,
    log_beyond,
    log_context,
    log_started,
    outcome_of,
    refusal_logged,
    summarize_run,
    vanished,
)
from fulcrum_sync.services.run.write_batch import WriteBatch
from fulcrum_sync.sources.base import Source
from fulcrum_sync.store import claims as context_claims
from fulcrum_sync.store import progress
from fulcrum_sync.store.claims import Claimant, take_in
from fulcrum_sync.store.runs import Claim


@dataclass(slots=True)
class SyncRun:
    """One sync run; :meth:`execute` runs its steps and returns the result.

    :param patterns: how each synced context's patterns run (disabled: ``--no-patterns``).
    :param loader: loads the cache tables of the contexts whose sync and patterns succeeded
        (also when done earlier: it loads only what changed), ``cache_batch`` at a time.
    :param keep_contexts: keep every context's result in ``result.contexts``; False keeps
        only the failed ones and counts the others (memory flat in the number of contexts,
        for a job whose output is the log lines of each context).
    """

    engine: Engine
    source: Source
    settings: Settings
    request: SyncRequest
    patterns_step: PatternStep = NO_PATTERNS
    loader: CacheLoads | None = None
    cache_batch: int = CACHE_BATCH
    stop: threading.Event | None = None
    on_result: Callable[[ContextResult], None] | None = None
    on_start: Callable[[int], None] | None = None
    keep_contexts: bool = True
    contexts: list[ContextDef] = field(default_factory=list)
    behind: CatchUpPlan | None = None  # --catch-up: who syncs which missed periods
    rc: RunContext = field(init=False)
    result: SyncRunResult = field(init=False)
    statuses: RunStatuses = field(init=False)  # of the contexts synced for the period only
    late_statuses: RunStatuses = field(init=False)  # of the contexts behind
    fetcher: Source = field(init=False)  # the source, or its planner of shared round trips
    _before: SourceStats = field(init=False)
    _analysed: set[str] | None = None  # the period's succeeded pattern keys, read once
    # Pattern keys claimed with a context's sync (or with its sync key found done), by its
    # sync key: the context's patterns then claim nothing more (store/claims.py).
    _pattern_claims: dict[str, dict[str, Claim]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _cache: CacheQueue | None = field(init=False, default=None)
    batch: WriteBatch | None = field(init=False, default=None)  # contexts stored together
    _first_use: FirstUse = field(default_factory=FirstUse)  # loads the work's modules

    def execute(self) -> SyncRunResult:
        """Sync every selected context for ``request.period`` (and, with ``--catch-up``,
        the periods each missed). Raises InputError (bad filters, an unsafe table name) or
        StoreError (database unreachable)."""
        request = self.request
        self.select()
        self.rc = RunContext.start(
            self.engine,
            "sync",
            request,
            lease_seconds=self.settings.lease_seconds,
            stop=self.stop,
            force=request.force,
        )
        self.result = SyncRunResult(
            run_id=self.rc.run_id, request=request, started_at=datetime.now(UTC)
        )
        self.result.beyond = self.behind.rest if self.behind else []
        log_started(self.rc, request, len(self.contexts))
        self._before = self.source.stats()
        if self.on_start is not None:
            self.on_start(len(self.contexts))
        late = [c for c in self.contexts if self.behind is not None and self.behind.catches_up(c)]
        late_ids = {id(c) for c in late}
        work = [KeyedWork(sync_item(c, request.period), c) for c in self.contexts]
        work = [w for w in work if id(w.payload) not in late_ids]
        self.statuses = RunStatuses(self.engine, request.grain.value, [w.payload for w in work])
        self.late_statuses = RunStatuses(self.engine, request.grain.value, late)
        self.fetcher = fetch_plan.for_run(  # contexts sharing a cube share their round trips
            self.engine,
            self.source,
            [w.payload for w in work],
            self.statuses.of,
            self.settings,
            request,
            self.rc.owner,
        )
        with self.rc.recording(self.record):
            self.claim()
            try:
                try:
                    self._work(late, work)
                except RefusedError as exc:  # a wrong secret or URL: nothing more is sent
                    self.result.refused = str(exc)  # logged by refusal_logged (exit 2)
                except StopRequested:  # a wait for the database woke on SIGTERM: interrupted
                    pass  # the warning is logged; the record says interrupted (exit 143)
                self.load_queued()
            except BaseException:
                self.load_queued(load=False)  # report what was synced; load nothing more
                raise
            finally:
                if self.loader is not None:
                    self.loader.close()
        return self.result

    def select(self) -> None:
        """The contexts of the request, the catch-up plan; cache table names checked."""
        request, settings = self.request, self.settings
        if request.catch_up:
            catch_up.max_periods_of(settings, request)  # refused before anything is written
        self.contexts = select_contexts(
            self.engine, settings, request.grain, request.tenant, request.metric
        )
        if request.catch_up:
            self.behind = catch_up.plan(self.engine, settings, request, self.contexts)
        check_tenants(self.source, self.contexts)
        if self.loader is not None:
            self.loader.prepare(self.contexts)  # unsafe or shared names: refused before work
            self._cache = CacheQueue(self.loader, self.cache_batch)

    def claim(self) -> None:
        """Make every key of every context-period this run covers before any work starts
        (each is then claimed as its work starts: by :func:`run_keyed`, or per context)."""
        behind = self.behind
        for rest in self.result.beyond:
            log_beyond(self.rc.run_id, behind.max_periods if behind else 0, rest)
        ensure_expected(
            self.engine,
            [(c, behind.periods_of(c) if behind else [self.request.period]) for c in self.contexts],
            patterns=self.patterns_step.enabled,
            run_id=self.rc.run_id,
            overrides=self.patterns_step.overrides,
        )

    def _work(self, late: list[ContextDef], work: list[KeyedWork[ContextDef]]) -> None:
        """The contexts behind first (oldest periods first), then the others."""
        workers = self.request.workers
        if late:  # their keys are claimed per context, in one transaction each
            with keep_leases(self.engine, self.rc.owner, self.rc.lease_seconds):
                for res in map_workers(self.catch_up, late, workers):
                    if res is not None:
                        self.report(res)
        self.batch = WriteBatch.for_run(self.engine, workers, self.after)
        run_keyed(
            self.rc,
            work,
            self.fetch,
            outcome_of,
            self.skipped,
            workers=workers,
            on_result=self.report,
            made=True,  # claim() made every key
            claim=self._claim_context if self.patterns_step.enabled else None,
            deferred=self.batch.take if self.batch is not None else None,
        )

    def _claimant(self) -> Claimant:
        rc = self.rc
        return Claimant(rc.owner, rc.run_id, rc.lease_seconds, rc.force_before)

    def _claim_context(self, w: KeyedWork[ContextDef]) -> Claim:
        """Claim a context's sync key; when it is done, its unfinished pattern keys with it."""
        keys = sorted(self.patterns_step.keys(w.payload, self.request.period))
        sync, patterns = context_claims.claim_context(
            self.engine, w.item.run_key, keys, self._claimant()
        )
        if patterns:
            self._pattern_claims[w.item.run_key] = patterns
        return sync

    def _claim_patterns(self, ctx: ContextDef, conn: Connection, res: ContextResult) -> None:
        """Claim the pattern keys of a context whose sync succeeded, in its sync's
        transaction (not those of a dimension whose sync failed)."""
        if res.base is None or not res.base.success:
            return
        skip = frozenset(res.dimensions_failed)
        keys = sorted(self.patterns_step.keys(ctx, res.period, skip))
        self._pattern_claims[res.run_key] = take_in(conn, keys, self._claimant())

    def fetch(self, ctx: ContextDef) -> ContextResult | Deferred:
        """Fetch and store one context for the period; its key completes in the transaction
        of its writes (shared with other contexts' when its batch takes it: write_batch.py,
        its result then comes later). Then its patterns and its cache table."""
        request, enabled = self.request, self.patterns_step.enabled
        # Loaded by the first context to sync (an everything-done run needs none): collector.py
        with self._first_use(), refusal_logged():
            from fulcrum_sync.services.run.context_store import store_context
            from fulcrum_sync.services.run.sync_context import fetch_context, source_down_reason

            pending = fetch_context(
                self.engine,
                self.fetcher,
                ctx,
                request.period,
                self.settings,
                force_full=request.force_full,
                run_id=self.rc.run_id,
                statuses=self.statuses.of(ctx),
                owner=self.rc.owner,
            )
            patterns = enabled and bool(self.patterns_step.keys(ctx, request.period))
            batched = self.batch is not None and self.batch.add(ctx, pending, patterns)
            also = partial(self._claim_patterns, ctx) if enabled else None
            res = pending.result if batched else store_context(self.engine, pending, also)
        if (down := source_down_reason(self.source, res)) is not None:
            self.rc.halt(down)  # start no other context: the ones not started are released
        if batched:
            return DEFERRED  # reported once its batch is stored
        claims = self._pattern_claims.pop(res.run_key, None)  # none unless its writes committed
        if res.base is not None and res.base.success:
            self.patterns_step.after(self.rc, ctx, res, claims if res.key_done else None)
        self.after(ctx, res)
        return res

    def catch_up(self, ctx: ContextDef) -> ContextResult | None:
        """Sync the periods ``ctx`` missed as one range, then its patterns period by period."""
        if self.rc.stop.is_set() or self.behind is None:
            return None
        fields = self.rc.fields(tenant=ctx.tenant.identifier, metric=ctx.metric.metric_id)
        with bound_fields(**fields, grain=ctx.grain.value), refusal_logged():
            res = catch_up.sync_missed(
                self.rc,
                self.source,
                self.settings,
                ctx,
                self.behind.periods_of(ctx),
                self.request,
                self.patterns_step,
                self.late_statuses.of(ctx),
            )
            self.after(ctx, res)
        return res

    def skipped(self, w: KeyedWork[ContextDef], claim: Claim) -> ContextResult:
        """A context whose key this run did not win: done already, busy, or deleted."""
        if claim is Claim.GONE:  # nothing synced: never call it skipped, never analyse it
            return vanished(w.payload, w.item.run_key, self.request.period)
        res = ContextResult(
            context=w.payload.context,
            grain=self.request.grain,
            period=self.request.period,
            run_key=w.item.run_key,
            status="skipped",
            skip_reason=ALREADY_DONE if claim is Claim.DONE else BUSY,
        )
        if claim is Claim.DONE:
            claims = self._pattern_claims.pop(w.item.run_key, None)  # found done: claimed
            if claims is None:  # done before the run started: no claim was made
                unfinished = not self.patterns_step.keys(w.payload, self.request.period) <= (
                    self._done()
                )
            else:
                unfinished = Claim.CLAIMED in claims.values()
                if not unfinished and Claim.BUSY in claims.values():
                    res.skip_reason = BUSY  # another process is running its patterns
            if unfinished:
                res.skip_reason = FINISHING_PATTERNS  # interrupted or failed patterns
                res.started_at = datetime.now(UTC)
                self.patterns_step.after(self.rc, w.payload, res, claims)
                res.finished_at = datetime.now(UTC)
            self.after(w.payload, res)
        return res

    def after(self, ctx: ContextDef, res: ContextResult) -> None:
        """Older unfinished patterns (--catch-up), then the cache table (--cache-load)."""
        if self.behind is not None and self.patterns_step.enabled:
            older = self.behind.older_patterns.get(ctx.context.to_string(), [])
            catch_up.finish_older_patterns(self.rc, ctx, res, older, self.patterns_step)
        self.cache(ctx, res)

    def cache(self, ctx: ContextDef, res: ContextResult) -> None:
        """Queue the context's cache table when its sync and patterns succeeded (loaded with
        others' by :meth:`load_queued`)."""
        if self._cache is not None and catch_up.loadable(res):
            self._cache.mark(ctx, res)

    def load_queued(self, *, load: bool = True) -> None:
        """Load the queued contexts' cache tables together, then report each with its load.

        Nothing is loaded after SIGTERM (the next run loads what changed; the run is
        ``interrupted``) nor when ``load`` is False (the run is ending on an error).
        """
        if self._cache is not None:
            fields = {**self.rc.fields(), "grain": self.request.grain.value}
            stop = lambda: self.rc.interrupted  # noqa: E731  (the batch in flight finishes)
            self._cache.flush(self._emit, load=load, stop=stop, fields=fields)

    def report(self, res: ContextResult) -> None:
        """Keep (or count) one context's result, log it, tell the caller; a context whose
        cache table is queued waits for its load (every ``cache_batch`` contexts, and at
        the end of the run)."""
        if self._cache is not None and self._cache.hold(res):
            if self._cache.full:
                self.load_queued()
            return
        self._emit(res)

    def _emit(self, res: ContextResult) -> None:
        if self.keep_contexts or res.failed_any:
            self.result.contexts.append(res)
        else:
            self.result.tally.add(res)
        log_context(self.rc.run_id, res)
        if self.on_result is not None:
            self.on_result(res)

    def record(self) -> tuple[str, dict[str, object]]:
        """The outcome and the counts of the ``runs`` row, however the run ended."""
        rc, result = self.rc, self.result
        result.interrupted = rc.interrupted
        result.halted = rc.halted[0] if rc.halted else None
        result.finished_at = datetime.now(UTC)
        result.not_started = len(self.contexts) - result.context_count if rc.stop.is_set() else 0
        result.source = self.source.stats().since(self._before)
        if result.refused is None and not result.interrupted:
            result.refused = all_refused(result)
        down = getattr(self.source, "down_endpoints", None)  # tenants' own Cubes (routing)
        if result.halted is None and down is not None and (ends := down()):
            result.halted = (
                f"Cube down at {', '.join(ends)}: the contexts behind "
                f"{'it' if len(ends) == 1 else 'them'} failed, every other endpoint's ran"
            )
        return result.outcome, summarize_run(result)

    def _done(self) -> set[str]:
        """The period's succeeded pattern keys (read once, for the contexts done already)."""
        if not self.patterns_step.enabled:
            return set()
        with self._lock:
            if self._analysed is None:
                grain, period = self.request.grain.value, self.request.period
                self._analysed = progress.succeeded_keys(self.engine, "pattern", grain, period)
            return self._analysed


__all__ = ["CACHE_BATCH", "CacheLoads", "SyncRun"]
