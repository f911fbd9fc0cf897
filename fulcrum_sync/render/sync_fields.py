"""A sync's result as data: the ``--json`` document and the closing ``sync finished`` log
event's fields. No rich here: a job writing JSON lines prints its summary without it."""

from __future__ import annotations

from typing import Any

from fulcrum_sync.domain import ContextResult, ContextTally, SyncRunResult, format_period
from fulcrum_sync.jsonable import jsonable


def window_text(result: ContextResult) -> str:
    """The base series' window (``2025-01-01..2025-03-31``), empty when none was fetched."""
    return result.base.window.to_string() if result.base else ""


def wall_seconds(result: SyncRunResult) -> float:
    """The run's wall time, from start to finish (0 while either is unknown)."""
    if result.started_at is None or result.finished_at is None:
        return 0.0
    return (result.finished_at - result.started_at).total_seconds()


def sync_result_json(result: SyncRunResult) -> dict[str, Any]:
    """The sync summary as JSON-ready data (the same facts as the table)."""
    return {
        "run_id": result.run_id,
        "grain": result.request.grain.value,
        "period": result.request.period.isoformat(),
        "period_label": format_period(result.request.grain, result.request.period),
        "outcome": result.outcome,
        "started_at": result.started_at,
        "finished_at": result.finished_at,
        "duration_seconds": round(wall_seconds(result), 3),
        "halted": result.halted,
        "refused": result.refused,
        "not_started": result.not_started,
        "source": jsonable(result.source),
        "beyond": jsonable(result.beyond),
        "failed": [
            {"context": c.context.to_string(), "error": c.error or context_errors(c)}
            for c in result.failed
        ],
        "contexts": [
            {
                "context": c.context.to_string(),
                "run_key": c.run_key,
                "status": c.status,
                "skip_reason": c.skip_reason,
                "sync_type": c.sync_types,
                "window": window_text(c),
                "rows_stored": c.rows_stored,
                "rows_skipped": c.rows_skipped,
                "duration_seconds": round(c.duration_seconds, 4),
                "error": c.error,
                "series": jsonable(c.series),
                "patterns": jsonable(c.patterns),
                "periods": [p.isoformat() for p in c.periods],
                "rows_fetched": c.rows_fetched,
                "rows_in_range": c.rows_in_range,
                "cache": jsonable(c.cache),
            }
            for c in sorted(result.contexts, key=lambda c: c.context)
        ],
    }


def sync_summary_fields(result: SyncRunResult) -> dict[str, Any]:
    """The closing ``sync finished`` log event's fields: aggregates of the run only.

    Built from the result itself, not from :func:`sync_result_json`: a job writing JSON log
    lines already logged each context, and the whole document costs memory per context.
    """
    failed = result.failed
    return {
        "run_id": result.run_id,
        "grain": result.request.grain.value,
        "period": result.request.period.isoformat(),
        "outcome": result.outcome,
        "counts": {
            "contexts": result.context_count,
            **result.status_counts(),
            "rows_stored": result.rows_stored,
            "rows_skipped": result.rows_skipped,
        },
        "duration": round(wall_seconds(result), 3),  # wall time, not the sum of the contexts'
        "halted": result.halted,
        "error": result.refused or result.halted or _failures(failed, result.context_count),
        "failed": [c.context.to_string() for c in failed],
        **_extra_fields(result),
        "not_started": result.not_started,
        "source": jsonable(result.source),
    }


def context_errors(c: ContextResult) -> str:
    """What failed after a context's sync: its patterns and its cache load."""
    errors = [f"{p.pattern}: {p.error}" for p in c.patterns if p.status == "failed"]
    if c.cache is not None and c.cache.status == "failed":
        errors.append(f"cache load: {c.cache.error}")
    return "; ".join(errors)


def _extra_fields(result: SyncRunResult) -> dict[str, Any]:
    """The periods caught up and the cache loads, when the run did either."""
    whole = ContextTally.of(result.contexts, result.tally)
    extra: dict[str, Any] = {}
    if whole.caught_up:
        extra["caught_up"] = {
            name: [p.isoformat() for p in periods]
            for name, periods in sorted(whole.caught_up.items())
        }
        extra["rows_fetched"] = whole.rows_fetched
        extra["rows_in_range"] = whole.rows_in_range
    if whole.cache_loads:
        extra["cache"] = whole.cache_loads
    return extra


def _failures(failed: list[ContextResult], total: int) -> str | None:
    if not failed:
        return None
    first = failed[0].error or context_errors(failed[0])
    return f"{len(failed)} of {total} contexts failed; first: {first}"
