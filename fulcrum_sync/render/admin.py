"""Print the outcome of the admin commands: ``catalog load`` and ``db upgrade``."""

from __future__ import annotations

from pathlib import Path

from fulcrum_sync.domain import CatalogSaveResult, UpgradeResult
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
    out.print("Run `fulcrum-sync discover` to update the active contexts.")


def print_upgrade(result: UpgradeResult) -> None:
    """Print where the schema was and where it is now."""
    where = f"Database {result.database}"
    if result.changed:
        stdout_console().print(f"{where}: schema {result.before or 'empty'} -> {result.after}.")
    else:
        stdout_console().print(f"{where}: schema already at {result.after}; nothing to do.")
