"""Print ``state show`` (one block per context) and ``state reset`` (what it clears)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from rich.console import Console
from rich.markup import escape

from fulcrum_sync.domain import (
    PART_TABLES,
    CacheState,
    ContextState,
    PatternState,
    ResetResult,
    RunKeyCount,
    StateReport,
)
from fulcrum_sync.render.console import status_style, stdout_console
from fulcrum_sync.render.numbers import format_int
from fulcrum_sync.render.table import Column, print_fitted, say_hidden

SERIES_COLUMNS = (
    Column("series"),
    Column("status"),
    Column("type"),
    Column("period"),
    Column("window", drop=3),
    Column("stored", "right"),
    Column("skipped", "right", drop=4),
    Column("at (UTC)", drop=2),
    Column("error", fold=True),
)
MISSING_SHOWN = 3  # missing periods listed per pattern; --json lists them all


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


def _span(first: date, last: date) -> str:
    return first.isoformat() if first == last else f"{first.isoformat()}..{last.isoformat()}"


def print_state(report: StateReport) -> None:
    """Print every context of the report: series, run keys, patterns, cache."""
    out = stdout_console()
    out.print(f"[bold]State of {escape(report.scope.describe())}[/bold]")
    if not report.contexts:
        out.print("No context in scope: load a catalog or run discover first.")
        return
    hidden: set[str] = set()
    for ctx in report.contexts:
        hidden.update(_print_context(out, ctx))
    if hidden:
        say_hidden(out, [c.name for c in SERIES_COLUMNS if c.name in hidden])
    stored = sum(1 for c in report.contexts if c.series or c.run_keys)
    n = len(report.contexts)
    out.print(f"\n{n} context{'s' if n != 1 else ''} in scope, {stored} with state stored.")


def _print_context(out: Console, ctx: ContextState) -> list[str]:
    """Print one context's block; return the series columns left out at this width."""
    flag = "" if ctx.active else " [yellow](inactive)[/yellow]"
    out.print(f"\n[bold]{escape(ctx.context)}[/bold] {ctx.grain.value}{flag}")
    if not (ctx.series or ctx.run_keys or ctx.cache or any(p.present for p in ctx.patterns)):
        out.print("  nothing stored yet")
        return []
    dropped: list[str] = []
    if ctx.series:
        rows = [
            (
                escape(s.dimension or "(base)"),
                status_style(s.status),
                "INCR" if s.sync_type == "INCREMENTAL" else s.sync_type,
                s.period.isoformat(),
                f"{s.window_start.isoformat()}..{s.window_end.isoformat()}",
                format_int(s.rows_stored),
                format_int(s.rows_skipped),
                _when(s.last_attempt_at),
                escape(s.error or ""),
            )
            for s in ctx.series
        ]
        dropped = print_fitted(out, None, SERIES_COLUMNS, rows)
    else:
        out.print("  series: never synced (the next sync is FULL)")
    out.print(f"  run keys: {_keys_text(ctx.run_keys)}", markup=False, highlight=False)
    if ctx.patterns:
        out.print(f"  patterns: {_patterns_text(ctx.patterns)}", markup=False, highlight=False)
    out.print(f"  cache: {_cache_text(ctx.cache)}", markup=False, highlight=False)
    return dropped


def _keys_text(keys: list[RunKeyCount]) -> str:
    if not keys:
        return "none"
    parts = []
    for kind in ("sync", "pattern"):
        mine = [k for k in keys if k.kind == kind]
        if mine:
            counts = ", ".join(f"{format_int(k.count)} {k.status}" for k in mine)
            span = _span(min(k.first_period for k in mine), max(k.last_period for k in mine))
            parts.append(f"{kind} {counts} ({span})")
    return "; ".join(parts)


def _patterns_text(patterns: list[PatternState]) -> str:
    parts = []
    for p in patterns:
        name = p.pattern + (f"[{p.dimension}]" if p.dimension else "")
        counts = ", ".join(f"{n} {s}" for s, n in sorted(p.present.items())) or "none stored"
        if p.missing:
            shown = ", ".join(d.isoformat() for d in p.missing[:MISSING_SHOWN])
            more = f" +{len(p.missing) - MISSING_SHOWN}" if len(p.missing) > MISSING_SHOWN else ""
            counts += f", {len(p.missing)} missing ({shown}{more})"
        parts.append(f"{name} {counts}")
    return "; ".join(parts)


def _cache_text(loads: list[CacheState]) -> str:
    if not loads:
        return "never loaded"
    return "; ".join(
        f"{c.target} {c.table} {format_int(c.rows)} rows at {_when(c.loaded_at)} {c.status}"
        + (f": {c.error}" if c.error else "")
        for c in loads
    )


def _count_rows(result: ResetResult, counts: dict[str, int]) -> Iterable[tuple[str, str, str]]:
    for part, n in counts.items():
        yield PART_TABLES[part], part, format_int(n)


def print_reset_preview(result: ResetResult) -> None:
    """Print what a reset would clear: rows per table, and the keys it leaves alone."""
    out = stdout_console()
    verb = "would clear" if result.request.dry_run else "clears"
    out.print(f"Reset of {escape(result.request.scope.describe())} {verb}:")
    print_fitted(
        out,
        None,
        (Column("table"), Column("what"), Column("rows", "right")),
        list(_count_rows(result, result.rows)),
    )
    _print_held(out, result)


def print_reset(result: ResetResult) -> None:
    """Print how a reset ended: dry run, nothing to do, declined, or rows cleared."""
    out = stdout_console()
    scope = escape(result.request.scope.describe())
    if result.request.dry_run:
        print_reset_preview(result)
        out.print("Dry run: nothing was changed.")
    elif not result.total:
        out.print(f"Nothing to reset in {scope}.")
        _print_held(out, result)
    elif not result.applied:
        out.print("Aborted: nothing was changed.")
    else:
        out.print(f"Reset {scope}:")
        print_fitted(
            out,
            None,
            (Column("table"), Column("what"), Column("rows cleared", "right")),
            list(_count_rows(result, result.deleted)),
        )
        _print_held(out, result)
        out.print(f"Run {result.run_id}: succeeded. {_next_steps(result)}")


def _print_held(out: Console, result: ResetResult) -> None:
    if result.held:
        out.print(
            f"[yellow]{format_int(result.held)} run keys are held by a running process and "
            "were left alone.[/yellow]"
        )


def _next_steps(result: ResetResult) -> str:
    parts = set(result.deleted)
    hints = []
    if "sync status" in parts:
        hints.append("the next sync of these series is FULL")
    if "sync keys" in parts or "pattern keys" in parts:
        hints.append("the next run covering these periods does them again (no --force needed)")
    text = "; ".join(hints)
    return f"{text[:1].upper()}{text[1:]}." if text else ""
