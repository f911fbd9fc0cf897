"""Print what ``cache-load`` loaded: per-context tables, JSON, and the closing log event."""

from __future__ import annotations

from typing import Any, cast

from rich.markup import escape

from fulcrum_sync.domain import CacheLoadResult
from fulcrum_sync.render.console import status_style, stdout_console
from fulcrum_sync.render.numbers import format_int
from fulcrum_sync.render.table import Column, print_fitted


def cache_load_json(result: CacheLoadResult) -> dict[str, Any]:
    """The load as JSON-ready data: run, grain, target, counts and every context."""
    summary: dict[str, Any] = {"run_id": result.run_id, "grain": result.grain}
    summary["target"] = result.target
    summary.update(result.summary())
    return {**summary, "contexts": result.contexts}


def cache_load_summary_fields(result: CacheLoadResult) -> dict[str, Any]:
    """The closing ``cache-load finished`` log event's fields."""
    return {
        "run_id": result.run_id,
        "grain": result.grain.value,
        "target": result.target,
        "outcome": result.outcome,
        "counts": result.summary(),
    }


CACHE_LOAD_COLUMNS = (
    Column("context"),
    Column("table", drop=5),
    Column("rows loaded", "right"),
    Column("size MB", "right", drop=2),
    Column("window", drop=4),
    Column("load time", "right", drop=3),
    Column("status"),
)


def print_cache_load(result: CacheLoadResult) -> None:
    """Print one row per context's table, failures, and a closing line."""
    out = stdout_console()
    title = f"cache-load {result.grain.value} -> {result.target}"
    if not result.contexts:
        out.print(
            f"{title}: no active contexts with the cache enabled; run `fulcrum-sync sync "
            f"--grain {result.grain.value}` (or discover) first."
        )
        return
    rows = []
    for c in sorted(result.contexts, key=lambda c: c.context):
        size = "" if c.size_mb is None else f"{'~' if c.size_estimated else ''}{c.size_mb:.3f}"
        rows.append(
            (
                escape(c.context),
                escape(c.table),
                "" if c.status == "unchanged" else format_int(c.rows),
                size,
                c.window.to_string() if c.window else "",
                f"{c.seconds:.2f}s",
                status_style(c.status),
            )
        )
    estimated = any(c.size_estimated for c in result.contexts)
    caption = "~ size estimated from the rows: the target reported none" if estimated else None
    print_fitted(out, title, CACHE_LOAD_COLUMNS, rows, caption=caption, hidden="--json")
    for c in result.contexts:
        if c.status not in ("succeeded", "unchanged"):
            out.print(f"{c.status} {c.context}: {c.error or c.skip_reason}", markup=False)
    s = result.summary()
    if s["unchanged"]:
        out.print(
            f"{s['unchanged']} unchanged: no series changed since their last successful load "
            "(--force loads them anyway).",
            markup=False,
        )
    loaded = format_int(cast(int, s["rows"]))
    out.print(
        f"Run {result.run_id}: {s['outcome']} ({s['succeeded']} loaded, {s['skipped']} "
        f"skipped, {s['failed']} failed, {s['unchanged']} unchanged; {loaded} rows, "
        f"{s['size_mb']:.3f} MB in {s['duration_seconds']:.2f}s).",
        markup=False,
    )
