"""What a sync run logs for each context and records in its ``runs`` row and run items."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

from fulcrum_sync.catalog import ContextDef
from fulcrum_sync.domain import (
    CatchUpRest,
    ContextResult,
    ContextTally,
    InputError,
    RefusedError,
    SyncRequest,
    SyncRunResult,
    format_period,
)
from fulcrum_sync.jsonable import jsonable
from fulcrum_sync.logs import log_event
from fulcrum_sync.services.jobs.runner import Outcome, RunContext
from fulcrum_sync.sources.base import Source

log = logging.getLogger(__name__)

ALREADY_DONE = "already done (use --force to run again)"
BUSY = "claimed by another running process"
FINISHING_PATTERNS = "already synced; ran its unfinished patterns"
KEY_GONE = (
    "its run key {key} was deleted while this run meant to do it (state reset?): not synced, "
    "no pattern run; the next run does it"
)

_EVENTS = {"skipped": "context skipped", "failed": "context failed", "partial": "context failed"}


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


def log_started(rc: RunContext, request: SyncRequest, contexts: int) -> None:
    """Log the run's start once its record exists: a job killed later (SIGKILL, an OOM) still
    leaves its run id, and who ran it, in its logs."""
    log_event(
        log,
        "sync started",
        run_id=rc.run_id,
        grain=request.grain.value,
        period=request.period.isoformat(),
        counts={"contexts": contexts},
        owner=rc.owner,  # host:pid:run, as the run keys' lease owner
    )


def log_context(run_id: str | None, res: ContextResult) -> None:
    """Log one context's outcome as a structured event (a failure at ``error`` level)."""
    patterns = res.pattern_counts()
    log_event(
        log,
        _EVENTS.get(res.status, "context synced"),
        logging.ERROR
        if res.status in ("failed", "partial") or patterns["failed"] or res.cache_failed
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
            "patterns_succeeded": patterns["succeeded"],
            "patterns_skipped": patterns["skipped"],
            "patterns_failed": patterns["failed"],
        },
        duration=round(res.duration_seconds, 4),
        error=res.error
        or (_pattern_errors(res) if patterns["failed"] else None)
        or (res.cache.error if res.cache is not None and res.cache_failed else None)
        or res.skip_reason,
        **_catch_up_fields(res),
    )


def _pattern_errors(res: ContextResult) -> str:
    return "; ".join(f"{p.pattern}: {p.error}" for p in res.patterns if p.status == "failed")


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


def outcome_of(res: ContextResult) -> Outcome:
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
    if result.request.cache_load:  # kept contexts and counted ones (a job keeps few)
        summary["cache"] = ContextTally.of(result.contexts, result.tally).cache_loads
    return jsonable(summary)  # type: ignore[no-any-return]


def all_refused(result: SyncRunResult) -> str | None:
    """The refusal when every context the run tried failed because its tenant's own Cube
    refused the credentials (the run's only endpoint refused: a setting is wrong, exit 2);
    None when anything else was tried (the others' outcome decides: partial, exit 1)."""
    refused = [c for c in result.contexts if c.refused]
    attempted = ContextTally.of(result.contexts, result.tally).attempted
    if refused and len(refused) >= attempted:
        return refused[0].error
    return None


def check_tenants(source: Source, contexts: list[ContextDef]) -> None:
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
