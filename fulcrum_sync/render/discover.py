"""Print what ``discover`` changed and what the source check found."""

from __future__ import annotations

from typing import Any

from rich.markup import escape

from fulcrum_sync.domain import DiscoverResult
from fulcrum_sync.render.console import stdout_console
from fulcrum_sync.render.table import Column, print_fitted


def print_discover(result: DiscoverResult, verbose: bool = False) -> None:
    """Print the context changes, the summary line and the source check."""
    out = stdout_console()
    if result.demo_catalog_loaded:
        excluded = (
            f"; not taking part: {', '.join(result.tenants_excluded)}"
            if result.tenants_excluded
            else ""
        )
        out.print(
            "Catalog was empty: loaded the demo catalog "
            f"(tenants taking part: {', '.join(result.tenants) or 'none'}{excluded})."
        )
    changes = result.changes
    groups = changes.by_metric_context()
    if groups:
        print_fitted(
            out,
            "Context changes",
            (
                Column("context"),
                Column("grain"),
                Column("change"),
                Column("pattern contexts", fold=True),
            ),
            [
                (
                    g.context,
                    g.grain,
                    g.change,
                    ", ".join(f"{len(names)} {kind}" for kind, names in g.patterns.items()),
                )
                for g in groups
            ],
        )
    pattern_rows = [
        (f"{g.context}::{name}", g.grain, kind)
        for g in groups
        for kind, names in g.patterns.items()
        for name in names
    ]
    if pattern_rows and verbose:
        print_fitted(
            out,
            "Pattern context changes",
            (Column("context"), Column("grain"), Column("change")),
            pattern_rows,
        )
    elif pattern_rows:
        out.print(
            f"{len(pattern_rows)} pattern context changes counted above "
            "(list them with fulcrum-sync --verbose discover)."
        )
    scope = result.grain.value if result.grain else "all grains"
    out.print(
        f"{len(changes.added)} added, {len(changes.deactivated)} deactivated, "
        f"{len(changes.reactivated)} reactivated, {changes.unchanged} unchanged "
        f"({result.active_contexts} active contexts, {result.active_pattern_contexts} "
        f"pattern contexts, {scope})"
    )
    if result.checked_source:
        if result.broken_metrics:
            print_fitted(
                out,
                "Metrics the source cannot serve",
                (Column("context"), Column("missing members", fold=True)),
                [(k, ", ".join(v)) for k, v in sorted(result.broken_metrics.items())],
            )
        else:
            out.print("Source check: every measure, time dimension and dimension exists.")
        print_isolation(result)


def print_isolation(result: DiscoverResult) -> None:
    """Print the tenant isolation probe: tenants the source does not keep apart, and the fix."""
    out = stdout_console()
    if result.not_isolated:
        print_fitted(
            out,
            "Tenants the source does not keep apart (identical answers)",
            (
                Column("metric"),
                Column("tenants", fold=True),
                Column("grain"),
                Column("window", drop=2),
                Column("rows", "right", drop=3),
            ),
            [
                (g.metric, ", ".join(g.tenants), g.grain.value, g.window.to_string(), g.rows)
                for g in result.not_isolated
            ],
        )
        for group in result.not_isolated:
            out.print(f"[red]not isolated[/red]: {escape(group.message())}")
    for unknown in result.isolation_unknown:
        out.print(f"[red]isolation unknown[/red]: {escape(unknown.message())}")
    if result.isolation_probed and not (result.not_isolated or result.isolation_unknown):
        out.print(
            f"Tenant isolation: {len(result.isolation_probed)} metrics shared by tenants "
            "got a different answer for each tenant."
        )


def discover_summary_fields(result: DiscoverResult) -> dict[str, Any]:
    """The closing ``discover finished`` log event's fields."""
    changes = result.changes
    return {
        "grain": result.grain.value if result.grain else None,
        "counts": {
            "added": len(changes.added),
            "deactivated": len(changes.deactivated),
            "reactivated": len(changes.reactivated),
            "unchanged": changes.unchanged,
            "active_contexts": result.active_contexts,
        },
        "added": changes.added,
        "deactivated": changes.deactivated,
        "broken_metrics": result.broken_metrics or None,
        "not_isolated": [g.message() for g in result.not_isolated] or None,
        "isolation_unknown": [g.message() for g in result.isolation_unknown] or None,
    }
