"""Import, validate and store the catalog: tenants, metric definitions, targets."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from fulcrum_sync import catalog as cat
from fulcrum_sync.domain import (
    CatalogError,
    InputError,
    iter_periods,
    parse_period,
    shift_period,
)
from fulcrum_sync.sources.registry import source_entry
from fulcrum_sync.store import catalog as catalog_store

if TYPE_CHECKING:
    from fulcrum_sync.domain import CatalogSaveResult

TARGET_HORIZON_YEARS = 2  # constant targets are expanded this far past today


def read_catalog_file(path: Path, *, allow_empty: bool = True) -> cat.Catalog:
    """Read and validate a catalog YAML file, every check a load makes, writing nothing.

    Raises InputError naming the file and the problem: unreadable, not UTF-8, bad YAML, or
    CatalogError listing every problem with its field path (schema first; once that passes,
    unknown patterns, bad pattern settings and contexts that would share a cache table).
    With ``allow_empty`` False, a catalog without tenants is refused too.
    """
    try:
        catalog = cat.read_catalog(path)
    except CatalogError as exc:  # one pass: the pattern names are checked on the raw data too
        more = raw_pattern_problems(exc.data)
        if not more:
            raise
        raise CatalogError(exc.origin, [*exc.problems, *more], exc.shown) from None
    problems = catalog_problems(catalog)
    if problems:
        raise CatalogError(str(path), problems, cat.MAX_PROBLEMS_SHOWN)
    if not allow_empty and not catalog.tenants:
        raise InputError(
            f"catalog {path} has no tenants: loading it would deactivate every metric; "
            "pass --allow-empty to do that on purpose"
        )
    return catalog


def validate_catalog_file(path: Path) -> cat.Catalog:
    """Validate the catalog YAML at ``path`` as ``catalog load`` would; write nothing.

    Raises InputError naming the file and every problem found (an empty catalog too, as
    ``catalog load`` without ``--allow-empty`` would).
    """
    return read_catalog_file(path, allow_empty=False)


def export_catalog(engine: Engine) -> str:
    """Return the stored catalog as YAML that ``catalog load`` accepts (a round trip)."""
    return cat.dump_catalog(catalog_store.read_catalog(engine))


def load_catalog_file(
    engine: Engine, path: Path, history_start: date, *, allow_empty: bool = False
) -> CatalogSaveResult:
    """Validate the catalog YAML at ``path`` and make it the stored catalog.

    Raises InputError (bad YAML, a missing field, an empty catalog unless ``allow_empty``:
    nothing written) or StoreError.
    """
    catalog = read_catalog_file(path, allow_empty=allow_empty)
    return save_catalog(engine, catalog, history_start)


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
    problems = pattern_problems(catalog)
    if problems:
        raise InputError(f"invalid catalog: {problems[0]}")


def catalog_problems(catalog: cat.Catalog) -> list[str]:
    """Every problem the schema cannot see: patterns, pattern settings, shared cache tables."""
    return [*pattern_problems(catalog), *cache_table_problems(catalog)]


def pattern_problems(catalog: cat.Catalog) -> list[str]:
    """One line per unknown pattern name or tenant with invalid pattern settings."""
    if not any(t.pattern_settings or any(m.patterns for m in t.metrics) for t in catalog.tenants):
        return []  # nothing to check: spare the registry's import (pandas) on big catalogs
    from fulcrum_sync.patterns.registry import get_pattern, validate_pattern_settings

    problems = []
    for tenant in catalog.tenants:
        try:
            validate_pattern_settings(tenant.pattern_settings)
        except InputError as exc:
            problems.append(f"tenant {tenant.identifier}: {exc}")
        for metric in tenant.metrics:
            for name in metric.patterns:
                try:
                    get_pattern(name)
                except InputError as exc:
                    problems.append(f"tenant {tenant.identifier}: {exc}")
    return problems


def raw_pattern_problems(data: Any) -> list[str]:
    """Unknown pattern names in a catalog's parsed YAML that failed the schema, so a file's
    problems come in one pass (the schema's and these), not one kind per attempt."""
    names = [
        (tenant.get("identifier"), name)
        for tenant in _dicts(data.get("tenants") if isinstance(data, dict) else None)
        for metric in _dicts(tenant.get("metrics"))
        for name in _strings(metric.get("patterns"))
    ]
    if not names:
        return []
    from fulcrum_sync.patterns.registry import REGISTRY, get_pattern

    problems = []
    for tenant, name in names:
        if name not in REGISTRY:
            try:
                get_pattern(name)
            except InputError as exc:
                problems.append(f"tenant {tenant}: {exc}")
    return problems


def _dicts(value: Any) -> list[dict[str, Any]]:
    """The mappings in ``value`` when it is a list (raw YAML can hold anything)."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def cache_table_problems(catalog: cat.Catalog) -> list[str]:
    """One line per cache table that two contexts of the catalog would share.

    Every tenant and metric counts, active or not, so switching one on later cannot clash.
    """
    from fulcrum_sync.sinks.identifiers import cache_table_name, collisions  # catalog checks

    names = (
        (f"{t.identifier}::{m.metric_id}", cache_table_name(t.identifier, m.metric_id, grain))
        for t in catalog.tenants
        for m in t.metrics
        for grain in m.grains
    )
    return collisions(names)


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


def require_catalog(catalog: cat.Catalog, source_name: str) -> None:
    """Refuse a job on an empty catalog (InputError saying how to load one).

    A self-contained source (the demo) is exempt: an empty catalog there gets the demo
    catalog on discovery.
    """
    if not catalog.tenants and not source_entry(source_name).self_contained:
        raise InputError(
            f"the catalog is empty (FULCRUM_SYNC_SOURCE={source_name}): load one with "
            "`fulcrum-sync catalog load FILE`"
        )


def ensure_catalog(engine: Engine, source_name: str, history_start: date) -> bool:
    """Load the demo catalog when none is stored and the source is the demo; return if it did."""
    if not source_entry(source_name).self_contained or not catalog_store.catalog_is_empty(engine):
        return False
    demo = cat.demo_catalog()
    targets = expand_targets(demo, history_start)
    return catalog_store.save_catalog(engine, demo, targets, only_if_empty=True) is not None
