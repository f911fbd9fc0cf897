"""``state prune`` and the prune after each scheduled sync: keep the run history bounded.

What goes and what stays is drawn in :mod:`fulcrum_sync.domain.retention`. A prune counts
first, asks (unless told not to), then deletes in short batches, recorded as a
``state prune`` run. Nothing to prune records nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from fulcrum_sync.config import Settings
from fulcrum_sync.domain import DependencyError
from fulcrum_sync.domain.retention import Cutoff, PruneRequest, PruneResult
from fulcrum_sync.logs import log_event
from fulcrum_sync.services.jobs.runner import RunContext
from fulcrum_sync.store import retention as store

log = logging.getLogger(__name__)


def prune(
    engine: Engine,
    request: PruneRequest,
    *,
    now: datetime,
    lease_seconds: int = 120,
    confirm: Callable[[PruneResult], bool] | None = None,
) -> PruneResult:
    """Count the history older than ``request.keep_days`` and, unless a dry run or declined,
    delete it in batches, recorded as a ``state prune`` run.

    :param now: today as the tool sees it (``Settings.now()``; FULCRUM_SYNC_TODAY moves it).
    :param confirm: shown the counts before anything is deleted; False leaves all as it was.
    Raises InputError (a bad keep-days) or StoreError.
    """
    request.check()
    cutoff = Cutoff.of(now, request.keep_days)
    clock = datetime.now(UTC)  # leases run on the clock, whatever today is pretended to be
    rows, held = store.count_old(engine, cutoff, clock)
    result = PruneResult(request, cutoff, rows, held)
    if request.dry_run or not result.total:
        return result
    if confirm is not None and not confirm(result):
        return result
    arguments = {"keep_days": request.keep_days, "before": cutoff.day}
    rc = RunContext.start(engine, "state prune", arguments, lease_seconds=lease_seconds)

    def summarize() -> tuple[str, dict[str, Any]]:
        summary = {"deleted": dict(result.deleted), "held": held, "batches": result.batches}
        return "succeeded", summary

    with rc.recording(summarize):
        result.deleted, result.batches = store.delete_old(engine, cutoff, clock, request.batch_rows)
        result.applied = True
    result.run_id = rc.run_id
    return result


def prune_after_job(engine: Engine, settings: Settings) -> PruneResult | None:
    """Prune as ``FULCRUM_SYNC_RETENTION_DAYS`` says, after a scheduled job's work.

    Returns None when retention is off (0) or the prune failed: a failure is logged as a
    warning and never fails the job (the next run prunes again).
    """
    if settings.retention_days <= 0:
        return None
    request = PruneRequest(settings.retention_days)
    try:
        result = prune(engine, request, now=settings.now(), lease_seconds=settings.lease_seconds)
    except DependencyError as exc:
        log_event(
            log,
            "could not prune the run history (the next run tries again)",
            logging.WARNING,
            error=str(exc),
            keep_days=settings.retention_days,
        )
        return None
    if result.applied:
        log_event(
            log,
            "run history pruned",
            before=result.cutoff.day.isoformat(),
            deleted=result.deleted,
            run_id=result.run_id,
        )
    return result
