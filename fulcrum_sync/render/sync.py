"""Print a sync's plan and result: the summary table, JSON, and the closing log event."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.markup import escape

from fulcrum_sync.domain import ContextResult, SyncRequest, SyncRunResult, format_period
from fulcrum_sync.jsonable import jsonable
from fulcrum_sync.render.console import print_table, status_style, stdout_console


def _window_text(result: ContextResult) -> str:
    return result.base.window.to_string() if result.base else ""


def sync_result_json(result: SyncRunResult) -> dict[str, Any]:
    """The sync summary as JSON-ready data (the same facts as the table)."""
    return {
        "run_id": result.run_id,
        "grain": result.request.grain.value,
        "period": result.request.period.isoformat(),
        "period_label": format_period(result.request.grain, result.request.period),
        "outcome": result.outcome,
        "halted": result.halted,
        "not_started": result.not_started,
        "source": jsonable(result.source),
        "contexts": [
            {
                "context": c.context.to_string(),
                "run_key": c.run_key,
                "status": c.status,
                "skip_reason": c.skip_reason,
                "sync_type": c.sync_types,
                "window": _window_text(c),
                "rows_stored": c.rows_stored,
                "rows_skipped": c.rows_skipped,
                "duration_seconds": round(c.duration_seconds, 4),
                "error": c.error,
                "series": jsonable(c.series),
                "patterns": jsonable(c.patterns),
            }
            for c in sorted(result.contexts, key=lambda c: c.context)
        ],
    }


def sync_summary_fields(summary: dict[str, Any]) -> dict[str, Any]:
    """The closing ``sync finished`` log event's fields, from :func:`sync_result_json`."""
    contexts = summary["contexts"]
    by_status: dict[str, int] = {}
    for c in contexts:
        by_status[c["status"]] = by_status.get(c["status"], 0) + 1
    return {
        "run_id": summary["run_id"],
        "grain": summary["grain"],
        "period": summary["period"],
        "outcome": summary["outcome"],
        "counts": {
            "contexts": len(contexts),
            **by_status,
            "rows_stored": sum(c["rows_stored"] for c in contexts),
            "rows_skipped": sum(c["rows_skipped"] for c in contexts),
        },
        "duration": round(sum(c["duration_seconds"] for c in contexts), 3),
        "failed": [c["context"] for c in contexts if c["status"] in ("failed", "partial")],
        "halted": summary["halted"],
        "not_started": summary["not_started"],
        "source": summary["source"],
    }


def print_sync_result(result: SyncRunResult) -> None:
    """Print the sync summary table and one closing line."""
    out = stdout_console()
    req = result.request
    rows = []
    for c in sorted(result.contexts, key=lambda c: c.context):
        dims_ok = sum(1 for d in c.dimensions if d.success)
        p = c.pattern_counts()
        rows.append(
            (
                c.context.to_string(),
                c.sync_types,
                _window_text(c),
                c.rows_stored,
                c.rows_skipped,
                f"{dims_ok}/{len(c.dimensions_failed)}" if c.status != "skipped" else "",
                f"{p['succeeded']}/{p['skipped']}/{p['failed']}" if c.patterns else "",
                f"{c.duration_seconds:.2f}s",
                status_style(c.status) + (f" ({c.skip_reason})" if c.skip_reason else ""),
            )
        )
    print_table(
        out,
        f"sync {req.grain.value} {format_period(req.grain, req.period)}",
        [
            "context",
            "sync type",
            "window",
            "rows stored",
            "rows skipped",
            "dims ok/failed",
            "patterns ok/skip/fail",
            "duration",
            "status",
        ],
        rows,
    )
    for c in result.failed:
        out.print(f"[red]failed[/red] {c.context}: {escape(c.error or 'see patterns')}")
    by_status: dict[str, int] = {}
    for c in result.contexts:
        by_status[c.status] = by_status.get(c.status, 0) + 1
    counts = ", ".join(f"{n} {s}" for s, n in sorted(by_status.items())) or "no contexts"
    if result.halted:
        out.print(
            f"[red]Stopped early[/red]: {escape(result.halted)}; {result.not_started} contexts "
            "not started were released (the next run does them)."
        )
    stats = result.source
    if stats is not None and (stats.retries or stats.throttled):
        out.print(
            f"Source: {stats.requests} requests, {stats.retries} retries "
            f"(budget {stats.retry_budget}), {stats.throttled} answered 429, "
            f"{stats.throttled_waits} throttled waits."
        )
    out.print(f"Run {result.run_id}: {result.outcome} ({counts}).")


def print_sync_plan(request: SyncRequest, planned: Sequence[Any]) -> None:
    """Print what a dry run would fetch."""
    out = stdout_console()
    print_table(
        out,
        f"sync --dry-run {request.grain.value} {format_period(request.grain, request.period)}",
        ["context", "series", "sync type", "window"],
        [
            (p.context, p.dimension or "(base)", p.sync_type.value, p.window.to_string())
            for p in planned
        ],
    )
    contexts = len({p.context for p in planned})
    out.print(f"Dry run: {contexts} contexts, {len(planned)} series; nothing was written.")
