"""Print a sync's plan and result: the summary table, JSON, and the closing log event."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.markup import escape

from fulcrum_sync.domain import (
    ContextResult,
    ContextTally,
    SyncRequest,
    SyncRunResult,
    format_period,
)
from fulcrum_sync.jsonable import jsonable
from fulcrum_sync.render.console import status_style, stdout_console
from fulcrum_sync.render.numbers import format_int
from fulcrum_sync.render.table import Column, print_fitted, say_hidden


def _window_text(result: ContextResult) -> str:
    return result.base.window.to_string() if result.base else ""


def _wall(result: SyncRunResult) -> float:
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
        "duration_seconds": round(_wall(result), 3),
        "halted": result.halted,
        "refused": result.refused,
        "not_started": result.not_started,
        "source": jsonable(result.source),
        "beyond": jsonable(result.beyond),
        "failed": [
            {"context": c.context.to_string(), "error": c.error or _context_errors(c)}
            for c in result.failed
        ],
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
        "duration": round(_wall(result), 3),  # wall time, not the sum of the contexts'
        "halted": result.halted,
        "error": result.refused or result.halted or _failures(failed, result.context_count),
        "failed": [c.context.to_string() for c in failed],
        **_extra_fields(result),
        "not_started": result.not_started,
        "source": jsonable(result.source),
    }


def _context_errors(c: ContextResult) -> str:
    errors = [f"{p.pattern}: {p.error}" for p in c.patterns if p.status == "failed"]
    if c.cache is not None and c.cache.status == "failed":
        errors.append(f"cache load: {c.cache.error}")
    return "; ".join(errors)


def _periods_text(c: ContextResult) -> str:
    if not c.periods:
        return ""
    grain = c.grain
    first, last = format_period(grain, c.periods[0]), format_period(grain, c.periods[-1])
    return first if len(c.periods) == 1 else f"{first}..{last} ({len(c.periods)})"


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
    first = failed[0].error or _context_errors(failed[0])
    return f"{len(failed)} of {total} contexts failed; first: {first}"


SYNC_TYPE_SHORT = {"FULL": "FULL", "INCREMENTAL": "INCR", "FULL/INCREMENTAL": "FULL+INCR"}
# Dropped highest ``drop`` first: the window goes before the counts, and ``time`` before the
# columns that say what a scheduled ``sync --catch-up --cache-load`` did (periods, cache).
SUMMARY_COLUMNS = (
    Column("context"),
    Column("periods", drop=2),  # shown only when a context caught up
    Column("type"),
    Column("window", drop=8),
    Column("stored", "right"),
    Column("skipped", "right", drop=7),
    Column("dims", drop=6),
    Column("patterns", drop=5),
    Column("time", "right", drop=4),
    Column("cache", drop=3),  # shown only with --cache-load
    Column("status"),
)


def print_sync_result(result: SyncRunResult) -> None:
    """Print the sync summary: one line per context, fitted to the terminal's width.

    Columns that do not fit are left out (``--json`` has every field); a skip reason is said
    once, in a legend under the table.
    """
    out = stdout_console()
    req = result.request
    reasons: dict[str, str] = {}  # skip reason -> its mark
    rows = _summary_rows(result, reasons)
    title = f"sync {req.grain.value} {format_period(req.grain, req.period)}"
    unused = {
        "periods": not any(c.periods for c in result.contexts),
        "cache": not any(c.cache for c in result.contexts),
    }
    used = [i for i, col in enumerate(SUMMARY_COLUMNS) if not unused.get(col.name)]
    columns = [SUMMARY_COLUMNS[i] for i in used]
    dropped = print_fitted(out, title, columns, [[row[i] for i in used] for row in rows])
    for reason, mark in reasons.items():
        out.print(f"{mark} {escape(reason)}")
    shown = {c.name for c in columns} - set(dropped)
    worked = any(c.status != "skipped" for c in result.contexts)
    legend = [
        text
        for name, text in (
            ("type", "INCR = INCREMENTAL"),
            ("dims", "dims ok/failed"),
            ("patterns", "patterns ok/skipped/failed"),
        )
        if worked and name in shown
    ]
    if legend:
        out.print(f"[dim]{' · '.join(legend)}[/dim]")
    if dropped and worked:
        say_hidden(out, dropped)
    for c in result.failed:
        out.print(f"[red]failed[/red] {c.context}: {escape(c.error or _context_errors(c))}")
    for rest in result.beyond:
        first, last = format_period(req.grain, rest.start), format_period(req.grain, rest.end)
        out.print(
            f"[red]Behind beyond --max-periods[/red]: {escape(', '.join(rest.contexts))}: "
            f"{first}..{last} ({rest.periods} periods) left; run: {escape(rest.command)}"
        )
    by_status: dict[str, int] = {}
    for c in result.contexts:
        by_status[c.status] = by_status.get(c.status, 0) + 1
    counts = ", ".join(f"{n} {s}" for s, n in sorted(by_status.items())) or "no contexts"
    if result.refused:
        out.print(f"[red]Stopped[/red]: {escape(result.refused)}")
    elif result.halted:
        out.print(
            f"[red]Stopped early[/red]: {escape(result.halted)}; {result.not_started} contexts "
            "not started were released (the next run does them)."
        )
    stats = result.source
    if stats is not None and stats.requests:
        line = f"Source: {stats.requests} requests, {stats.queries} queries"
        if stats.retries or stats.throttled:
            line += (
                f", {stats.retries} retries (budget {stats.retry_budget}), "
                f"{stats.throttled} answered 429, {stats.throttled_waits} throttled waits"
            )
        out.print(line + ".")
    out.print(f"Run {result.run_id}: {result.outcome} ({counts}).")


def _summary_rows(result: SyncRunResult, reasons: dict[str, str]) -> list[tuple[str, ...]]:
    """One row per context, in SUMMARY_COLUMNS order; a skip reason gets a mark in
    ``reasons`` (said once, under the table)."""
    rows: list[tuple[str, ...]] = []
    for c in sorted(result.contexts, key=lambda c: c.context):
        status = status_style(c.status)
        if c.skip_reason:
            mark = reasons.setdefault(c.skip_reason, f"({chr(ord('a') + len(reasons))})")
            status += f" {mark}"
        worked = c.status != "skipped"
        p = c.pattern_counts()
        rows.append(
            (
                c.context.to_string(),
                _periods_text(c),
                SYNC_TYPE_SHORT.get(c.sync_types, "") if worked else "",
                _window_text(c),
                format_int(c.rows_stored) if worked else "",
                format_int(c.rows_skipped) if worked else "",
                f"{sum(1 for d in c.dimensions if d.success)}/{len(c.dimensions_failed)}"
                if worked
                else "",
                f"{p['succeeded']}/{p['skipped']}/{p['failed']}" if c.patterns else "",
                f"{c.duration_seconds:.2f}s" if worked else "",
                status_style(c.cache.status) if c.cache is not None else "",
                status,
            )
        )
    return rows


def print_sync_plan(request: SyncRequest, planned: Sequence[Any]) -> None:
    """Print what a dry run would fetch (with --catch-up: the periods of each context)."""
    out = stdout_console()
    grain = request.grain
    caught = any(
        len(p.periods) > 1 or p.periods[:1] != [request.period] for p in planned if p.periods
    )
    columns = [Column("context"), Column("series"), Column("sync type"), Column("window", drop=1)]
    rows = [
        [p.context, escape(p.dimension or "(base)"), p.sync_type.value, p.window.to_string()]
        for p in planned
    ]
    if caught:
        columns.insert(1, Column("periods"))
        for row, p in zip(rows, planned, strict=True):
            first, last = format_period(grain, p.periods[0]), format_period(grain, p.periods[-1])
            row.insert(1, first if len(p.periods) == 1 else f"{first}..{last} ({len(p.periods)})")
    print_fitted(
        out,
        f"sync --dry-run {request.grain.value} {format_period(request.grain, request.period)}",
        columns,
        rows,
        hidden="--json",
    )
    contexts = len({p.context for p in planned})
    out.print(f"Dry run: {contexts} contexts, {len(planned)} series; nothing was written.")
