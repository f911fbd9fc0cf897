"""The ``sync`` service: every active context of a grain for one period, once per run key."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Protocol

from sqlalchemy import Engine

from fulcrum_sync.catalog import ContextDef
from fulcrum_sync.config import Settings
from fulcrum_sync.domain import (
    CatchUpRest,
    ContextCacheResult,
    ContextResult,
    InputError,
    RefusedError,
    SyncRequest,
    SyncRunResult,
    SyncType,
    Window,
    format_period,
)
from fulcrum_sync.jsonable import jsonable
from fulcrum_sync.logs import bound_fields, log_event
from fulcrum_sync.services import catch_up, fetch_plan
from fulcrum_sync.services.keys import Overrides, ensure_expected, pattern_keys, sync_item
from fulcrum_sync.services.runner import (
    KeyedWork,
    Outcome,
    RunContext,
    keep_leases,
    map_workers,
    run_keyed,
)
from fulcrum_sync.services.selection import select_contexts
from fulcrum_sync.services.statuses import RunStatuses
from fulcrum_sync.services.sync_context import plan_series, source_down_reason, sync_context
from fulcrum_sync.sources.base import Source
from fulcrum_sync.store import runs
from fulcrum_sync.store.runs import Claim

log = logging.getLogger(__name__)

ALREADY_DONE = "already done (use --force to run again)"
BUSY = "claimed by another running process"
FINISHING_PATTERNS = "already synced; ran its unfinished patterns"
KEY_GONE = (
    "its run key {key} was deleted while this run meant to do it (state reset?): not synced, "
    "no pattern run; the next run does it"
)

_EVENTS = {"skipped": "context skipped", "failed": "context failed", "partial": "context failed"}

# Runs a context's patterns after its sync; appends to ``result.patterns``.
PatternChain = Callable[[RunContext, ContextDef, ContextResult], None]


class CacheChain(Protocol):
    """Loads a context's cache table after its sync (``--cache-load``: ChainedLoad)."""

    def prepare(self, contexts: list[ContextDef]) -> None: ...

    def load(self, ctx: ContextDef) -> ContextCacheResult: ...

    def close(self) -> None: ...


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
    engine: Engine,
    source: Source,
    settings: Settings,
    request: SyncRequest,
    *,
    chain: PatternChain | None = None,
    stop: threading.Event | None = None,
    on_result: Callable[[ContextResult], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    overrides: Overrides = None,
    loader: CacheChain | None = None,
    keep_contexts: bool = True,
) -> SyncRunResult:
    """Sync every selected context for ``request.period``.

    Each context is claimed under its run key first; keys already done are skipped unless
    ``request.force``. With ``request.catch_up`` a context behind syncs every period it
    missed (services/catch_up.py). ``loader`` loads each context's cache table once its sync
    and patterns succeeded (also when done earlier: it loads only what changed). Raises
    InputError (bad filters, an unsafe table name) or StoreError (database unreachable).

    :param keep_contexts: keep every context's result in ``result.contexts``; False keeps
        only the failed ones and counts the others (memory flat in the number of contexts,
        for a job whose output is the log lines of each context).
    """
    if request.catch_up:
        catch_up.max_periods_of(settings, request)  # refused before anything is written
    contexts = select_contexts(engine, settings, request.grain, request.tenant, request.metric)
    behind = catch_up.plan(engine, settings, request, contexts) if request.catch_up else None
    _check_tenants(source, contexts)
    if loader is not None:
        loader.prepare(contexts)  # unsafe or shared table names: refused before any work
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
    result.beyond = behind.rest if behind else []
    before = source.stats()
    if on_start is not None:
        on_start(len(contexts))
    late = [c for c in contexts if behind is not None and behind.catches_up(c)]
    work = [KeyedWork(sync_item(c, request.period), c) for c in contexts if c not in late]
    statuses = RunStatuses(engine, request.grain.value, [w.payload for w in work])
    fetcher = fetch_plan.for_run(  # contexts sharing a cube share their round trips
        engine, source, [w.payload for w in work], statuses.of, settings, request, rc.owner
    )

    def after(ctx: ContextDef, res: ContextResult) -> None:
        """Older unfinished patterns (--catch-up), then the cache table (--cache-load)."""
        if behind is not None and chain is not None and request.run_patterns:
            older = behind.older_patterns.get(ctx.context.to_string(), [])
            catch_up.finish_older_patterns(rc, ctx, res, older, overrides)
        if loader is not None and catch_up.loadable(res):
            res.cache = loader.load(ctx)

    def catch(ctx: ContextDef) -> ContextResult | None:
        if rc.stop.is_set() or behind is None:
            return None
        fields = rc.fields(tenant=ctx.tenant.identifier, metric=ctx.metric.metric_id)
        with bound_fields(**fields, grain=ctx.grain.value), refusal_logged():
            res = catch_up.sync_missed(
                rc, source, settings, ctx, behind.periods_of(ctx), request, overrides
            )
            after(ctx, res)
        return res

    def do(ctx: ContextDef) -> ContextResult:
        with refusal_logged():  # inside the context: the line carries its fields
            res = sync_context(
                engine,
                fetcher,
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
        after(ctx, res)
        return res

    analysed: list[set[str]] = []  # the period's succeeded pattern keys, read once

    def skipped(w: KeyedWork[ContextDef], claim: Claim) -> ContextResult:
        if claim is Claim.GONE:  # nothing synced: never call it skipped, never analyse it
            return vanished(w.payload, w.item.run_key, request.period)
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
            wanted = {item.run_key for item in pattern_keys(w.payload, request.period, overrides)}
            if not wanted <= analysed[0]:  # interrupted or failed patterns: finish them
                res.skip_reason = FINISHING_PATTERNS
                res.started_at = datetime.now(UTC)
                chain(rc, w.payload, res)
                res.finished_at = datetime.now(UTC)
        if claim is Claim.DONE:
            after(w.payload, res)
        return res

    def report(res: ContextResult) -> None:
        if keep_contexts or res.failed_any:
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
        result.not_started = len(contexts) - result.context_count if rc.stop.is_set() else 0
        result.source = source.stats().since(before)
        down = getattr(source, "down_endpoints", None)  # tenants' own Cubes (routing source)
        if result.halted is None and down is not None and (ends := down()):
            result.halted = (
                f"Cube down at {', '.join(ends)}: the contexts behind "
                f"{'it' if len(ends) == 1 else 'them'} failed, every other endpoint's ran"
            )
        return result.outcome, summarize_run(result)

    with rc.recording(summarize):
        for rest in result.beyond:
            log_beyond(run_id, behind.max_periods if behind else 0, rest)
        # Every key of every context-period this run covers exists before any work starts.
        ensure_expected(
            engine,
            [(c, behind.periods_of(c) if behind else [request.period]) for c in contexts],
            patterns=chain is not None and request.run_patterns,
            run_id=run_id,
            overrides=overrides,
        )
        try:
            if late:  # behind first, oldest periods first: their keys are claimed per context
                with keep_leases(engine, rc.owner, rc.lease_seconds):
                    for res in map_workers(catch, late, request.workers):
                        if res is not None:
                            report(res)
            run_keyed(
                rc,
                work,
                do,
                _outcome,
                skipped,
                workers=request.workers,
                on_result=report,
                made=True,
            )
        except RefusedError as exc:  # a wrong secret or URL: nothing more is sent (exit 2)
            result.refused = str(exc)  # logged by refusal_logged, with the context's fields
        finally:
            if loader is not None:
                loader.close()
    return result


def _check_tenants(source: Source, contexts: list[ContextDef]) -> None:
    """Refuse the run (InputError, exit 2, nothing done) when no selected tenant can be sent a
    request: each lacks its own Cube's variable or file. With some usable, the others'
    contexts fail naming the fix and the rest run."""
    unusable = getattr(source, "unusable", None)  # tenants' own Cubes (routing source)
    tenants = {c.tenant.identifier for c in contexts}
    if unusable is None or not tenants:
        return
    problems = unusable(tenants)
    if len(problems) == len(tenants):
        raise InputError("; ".join(str(e) for e in problems.values()))


@contextlib.contextmanager
def refusal_logged() -> Iterator[None]:
    """Log a RefusedError (401/403/404) at ``error`` where it happens, then let it end the run.

    Raised inside a context's work, the line carries that context's bound fields (run_id,
    run_key, tenant, metric, grain) and the endpoint.
    """
    try:
        yield
    except RefusedError as exc:
        log_event(
            log,
            "source refused the credentials",
            logging.ERROR,
            endpoint=getattr(exc, "endpoint", None),
            error=str(exc),
        )
        raise


def vanished(ctx: ContextDef, run_key: str, period: date) -> ContextResult:
    """A context whose run key was deleted before this run could claim it: failed, truthfully."""
    now = datetime.now(UTC)
    return ContextResult(
        context=ctx.context,
        grain=ctx.grain,
        period=period,
        run_key=run_key,
        status="failed",
        error=KEY_GONE.format(key=run_key),
        started_at=now,
        finished_at=now,
    )


def log_beyond(run_id: str, bound: int, rest: CatchUpRest) -> None:
    """Say at ``error`` level which periods a catch-up leaves, and the backfill for them."""
    first, last = format_period(rest.grain, rest.start), format_period(rest.grain, rest.end)
    names = ", ".join(rest.contexts[:5]) + (
        f" and {len(rest.contexts) - 5} more" if len(rest.contexts) > 5 else ""
    )
    log_event(
        log,
        "catch-up bound reached",
        logging.ERROR,
        run_id=run_id,
        grain=rest.grain.value,
        contexts=rest.contexts,
        counts={"contexts": len(rest.contexts), "periods_left": rest.periods},
        error=(
            f"{names} missed more than {bound} periods (--max-periods): {first}..{last} "
            f"({rest.periods}) are left for: {rest.command}"
        ),
        command=rest.command,
    )


def log_context(run_id: str | None, res: ContextResult) -> None:
    """Log one context's outcome as a structured event (a failure at ``error`` level)."""
    failed_patterns = res.pattern_counts()["failed"]
    log_event(
        log,
        _EVENTS.get(res.status, "context synced"),
        logging.ERROR
        if res.status in ("failed", "partial") or failed_patterns or res.cache_failed
        else logging.INFO,
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
        or (res.cache.error if res.cache is not None and res.cache_failed else None)
        or res.skip_reason,
        **_catch_up_fields(res),
    )


def _catch_up_fields(res: ContextResult) -> dict[str, Any]:
    """The periods a caught-up context synced and its cache load, for its log event."""
    fields: dict[str, Any] = {}
    if res.periods:
        fields["periods"] = [p.isoformat() for p in res.periods]
        fields["rows_fetched"] = res.rows_fetched
        fields["rows_in_range"] = res.rows_in_range
    if res.cache is not None:
        fields["cache"] = res.cache.status
    return fields


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
        **_catch_up_summary(result),
    }


def _catch_up_summary(result: SyncRunResult) -> dict[str, object]:
    """What --catch-up and --cache-load add to the run record (nothing without them)."""
    summary: dict[str, object] = {}
    if result.request.catch_up:
        caught = [c for c in result.contexts if c.periods]
        summary["catch_up"] = {
            "periods": {c.context.to_string(): [p.isoformat() for p in c.periods] for c in caught},
            "rows_fetched": sum(c.rows_fetched for c in caught),
            "rows_in_range": sum(c.rows_in_range or 0 for c in caught),
            "beyond": [
                {"contexts": r.contexts, "start": r.start, "end": r.end, "command": r.command}
                for r in result.beyond
            ],
        }
    if result.request.cache_load:
        loads: dict[str, int] = {}
        for c in result.contexts:
            if c.cache is not None:
                loads[c.cache.status] = loads.get(c.cache.status, 0) + 1
        summary["cache"] = loads
    return jsonable(summary)  # type: ignore[no-any-return]
