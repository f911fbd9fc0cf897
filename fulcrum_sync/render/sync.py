"""Print a sync's plan and result: the summary table (the data: render/sync_fields.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.markup import escape

from fulcrum_sync.domain import ContextResult, SyncRequest, SyncRunResult, format_period
from fulcrum_sync.render.console import status_style, stdout_console
from fulcrum_sync.render.numbers import format_int
from fulcrum_sync.render.sync_fields import (
    context_errors,
    sync_result_json,
    sync_summary_fields,
    window_text,
)
from fulcrum_sync.render.table import Column, print_fitted, say_hidden

__all__ = ["print_sync_plan", "print_sync_result", "sync_result_json", "sync_summary_fields"]


def _periods_text(c: ContextResult) -> str:
    if not c.periods:
        return ""
    grain = c.grain
    first, last = format_period(grain, c.periods[0]), format_period(grain, c.periods[-1])
    return first if len(c.periods) == 1 else f"{first}..{last} ({len(c.periods)})"


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
        out.print(f"[red]failed[/red] {c.context}: {escape(c.error or context_errors(c))}")
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
                window_text(c),
                format_int(c.rows_stored) if worked else "",
                format_int(c.rows_skipped) if worked else "",
                f"{sum(1 for d in c.dimensions if d.success)}/{len(c.dimensions_failed)}"
                if worked
                else "",
                f"{p['succeeded']}/{p['skipped']}/{p['failed']}" if c.patterns else "",
                f"{c.duration_seconds:.2f}s" if worked else "",
                _cache_text(c, reasons),
                status,
            )
        )
    return rows


def _cache_text(c: ContextResult, reasons: dict[str, str]) -> str:
    """The cache column: the load's status, with the mark of why it was skipped or failed
    (said once under the table, like a context's skip reason)."""
    if c.cache is None:
        return ""
    text = status_style(c.cache.status)
    why = c.cache.skip_reason if c.cache.status == "skipped" else None
    if why:
        text += " " + reasons.setdefault(why, f"({chr(ord('a') + len(reasons))})")
    return text


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
