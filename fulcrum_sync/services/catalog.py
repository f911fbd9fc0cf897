"""Import, validate and store the catalog: tenants, metric definitions, targets."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import Engine

from fulcrum_sync import catalog as cat
from fulcrum_sync.domain import (
    CatalogSaveResult,
    InputError,
    iter_periods,
    parse_period,
    shift_period,
)
from fulcrum_sync.store import catalog as catalog_store

TARGET_HORIZON_YEARS = 2  # constant targets are expanded this far past today


def read_catalog_file(path: Path) -> cat.Catalog:
    """Read and validate a catalog YAML file; raise InputError naming the file and problem."""
    return cat.read_catalog(path)


def validate_catalog_file(path: Path) -> cat.Catalog:
    """Validate the catalog YAML at ``path`` as ``catalog load`` would; write nothing.

    Raises InputError naming the file and every problem found.
    """
    catalog = read_catalog_file(path)
    check_patterns(catalog)
    return catalog


def export_catalog(engine: Engine) -> str:
    """Return the stored catalog as YAML that ``catalog load`` accepts (a round trip)."""
    return cat.dump_catalog(catalog_store.read_catalog(engine))


def load_catalog_file(engine: Engine, path: Path, history_start: date) -> CatalogSaveResult:
    """Validate the catalog YAML at ``path`` and make it the stored catalog.

    Raises InputError (bad YAML or a missing field, nothing written) or StoreError.
    """
    return save_catalog(engine, cat.read_catalog(path), history_start)


def save_catalog(engine: Engine, catalog: cat.Catalog, history_start: date) -> CatalogSaveResult:
    """Store ``catalog`` and its targets expanded to one row per period.

    Raises InputError, before writing anything, for an unknown pattern or bad pattern settings.
    """
    check_patterns(catalog)
    result = catalog_store.save_catalog(engine, catalog, expand_targets(catalog, history_start))
    assert result is not None  # None only with only_if_empty
    return result


def check_patterns(catalog: cat.Catalog) -> None:
    """Refuse unknown pattern names and invalid per-tenant pattern settings."""
    from fulcrum_sync.patterns.registry import get_pattern, validate_pattern_settings

    for tenant in catalog.tenants:
        try:
            validate_pattern_settings(tenant.pattern_settings)
            for metric in tenant.metrics:
                for name in metric.patterns:
                    get_pattern(name)
        except InputError as exc:
            raise InputError(f"invalid catalog: tenant {tenant.identifier}: {exc}") from None


def expand_targets(
    catalog: cat.Catalog, history_start: date, today: date | None = None
) -> list[tuple[int, str, str, date, float]]:
    """Expand each metric's targets: a constant to every period, a mapping to its periods."""
    today = today or datetime.now(UTC).date()
    horizon = today.replace(month=12, day=31, year=today.year + TARGET_HORIZON_YEARS - 1)
    rows: list[tuple[int, str, str, date, float]] = []
    for tenant in catalog.tenants:
        for metric in tenant.metrics:
            for grain, spec in metric.targets.items():
                if isinstance(spec, dict):
                    periods = {parse_period(grain, key): float(v) for key, v in spec.items()}
                else:
                    first = shift_period(grain, history_start, 0)
                    periods = {p: float(spec) for p in iter_periods(grain, first, horizon)}
                rows.extend(
                    (tenant.tenant_id, metric.metric_id, grain.value, p, v)
                    for p, v in sorted(periods.items())
                )
    return rows


def ensure_catalog(engine: Engine, source_name: str, history_start: date) -> bool:
    """Load the demo catalog when none is stored and the source is the demo; return if it did."""
    if source_name != "demo" or not catalog_store.catalog_is_empty(engine):
        return False
    demo = cat.demo_catalog()
    targets = expand_targets(demo, history_start)
    return catalog_store.save_catalog(engine, demo, targets, only_if_empty=True) is not None
