"""A context fetched and sanitized but not stored yet, and how its outcome is settled.

``sync_context.fetch_context`` makes a :class:`PendingContext`; ``context_store`` stores it
(alone, or with others of a batch: services/run/write_batch.py). Its result claims nothing
until its writes committed: ``key_done`` and the series' counts are set by the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from fulcrum_sync.domain import (
    ContextResult,
    FulcrumError,
    RefusedError,
    SeriesResult,
    SourceDownError,
    TenantRefusedError,
    is_outage,
)
from fulcrum_sync.store.runs import KeyDone
from fulcrum_sync.store.sync_write import SeriesWrite


@dataclass(slots=True)
class PendingContext:
    """One context's fetched series, what to store of each, and how its key completes.

    :param done: how its claimed run key completes with its writes (None: left to the
        caller; a refused credential completes nothing).
    :param refused: raised once what was fetched before it is stored.
    """

    result: ContextResult
    fetched: list[tuple[SeriesResult, SeriesWrite]]
    done: KeyDone | None = None
    refused: RefusedError | None = None

    @property
    def writes(self) -> list[SeriesWrite]:
        return [w for _, w in self.fetched]

    def finish(self, key_done: bool) -> ContextResult:
        """The result once its writes are stored (``key_done``: its key completed there)."""
        result = self.result
        result.key_done = key_done
        settle_status(result)
        result.finished_at = datetime.now(UTC)
        return result


def settle_status(result: ContextResult) -> None:
    """Set the context's status and error from its series."""
    failed = [s for s in result.series if not s.success]
    if result.base is not None and not result.base.success:
        result.status = "failed"
        result.error = result.base.error
    elif failed:
        result.status = "partial"
        result.error = "; ".join(f"{s.dimension}: {s.error}" for s in failed)
    else:
        result.status = "succeeded"
        result.error = None
    result.dependency_failure = bool(failed) and all(s.dependency_failure for s in failed)


def key_done(result: ContextResult, owner: str) -> KeyDone:
    """How the context's run key completes, in the transaction of its writes."""
    return KeyDone(
        result.run_key,
        owner,
        succeeded=result.status == "succeeded",
        counts={
            "rows_skipped": result.rows_skipped,
            "dimensions_failed": result.dimensions_failed,
        },
        error=result.error,
    )


def mark_failed(series: SeriesResult, exc: Exception) -> None:
    """Record in ``series`` why it failed."""
    series.success = False
    series.dependency_failure = is_outage(exc)
    series.source_down = isinstance(exc, SourceDownError)
    series.refused = isinstance(exc, TenantRefusedError)
    series.error = str(exc) if isinstance(exc, FulcrumError) else f"{type(exc).__name__}: {exc}"
