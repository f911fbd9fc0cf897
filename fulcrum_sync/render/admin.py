"""Print the outcome of the admin commands: ``catalog load`` and ``db upgrade``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fulcrum_sync.catalog import Catalog, active_contexts
from fulcrum_sync.domain import CatalogSaveResult, RevisionResult, UpgradeResult
from fulcrum_sync.render.console import stdout_console


def print_catalog_load(file: Path, result: CatalogSaveResult) -> None:
    """Print what a catalog load stored and changed."""
    out = stdout_console()
    out.print(
        f"Loaded {file}: {result.tenants} tenants, {result.metrics} metrics, "
        f"{result.targets} target periods."
    )
    for label, names in (
        ("added", result.metrics_added),
        ("changed", result.metrics_changed),
        ("removed", result.metrics_removed),
    ):
        if names:
            out.print(f"Metrics {label}: {', '.join(names)}")
    if not (result.metrics_added or result.metrics_changed or result.metrics_removed):
        out.print("No metric added, changed or removed.")
    out.print("Run `fulcrum-sync discover` to update the active contexts.")


def catalog_summary(catalog: Catalog) -> dict[str, Any]:
    """Counts of a catalog: tenants, metrics, and the contexts that take part."""
    return {
        "tenants": len(catalog.tenants),
        "metrics": sum(len(t.metrics) for t in catalog.tenants),
        "active_contexts": len(active_contexts(catalog)),
    }


def print_catalog_valid(file: Path, summary: dict[str, Any]) -> None:
    """Say a catalog file is valid and what it holds."""
    stdout_console().print(
        f"✓ {file} is valid: {summary['tenants']} tenants, {summary['metrics']} metrics, "
        f"{summary['active_contexts']} active contexts.",
        markup=False,
    )


def print_revision(result: RevisionResult) -> None:
    """Print a database's schema revision against the newest one."""
    where = f"Database {result.database}"
    if result.current:
        text = f"{where}: schema at {result.revision} (the newest)."
    elif result.revision is None:
        text = f"{where}: no schema yet (newest {result.head}); run `fulcrum-sync db upgrade`."
    else:
        text = (
            f"{where}: schema at {result.revision}, newest is {result.head}; "
            "run `fulcrum-sync db upgrade`."
        )
    stdout_console().print(text, markup=False)


def print_upgrade(result: UpgradeResult) -> None:
    """Print where the schema was and where it is now."""
    where = f"Database {result.database}"
    if result.changed:
        stdout_console().print(f"{where}: schema {result.before or 'empty'} -> {result.after}.")
    else:
        stdout_console().print(f"{where}: schema already at {result.after}; nothing to do.")
