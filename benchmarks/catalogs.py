"""What a benchmark runs fulcrum-sync on: settings, a synthetic catalog of any size, the state
it is discovered into, and a source that answers at once."""

from __future__ import annotations

from datetime import date
from typing import Any

HISTORY_START = date(2025, 7, 1)


def settings(database_url: str, **overrides: Any) -> Any:
    """Settings for a benchmark: no ``.env`` file, the given database, the demo source."""
    from pydantic import SecretStr

    from fulcrum_sync.config import Settings

    values: dict[str, Any] = {
        "database_url": SecretStr(database_url),
        "source": "demo",
        "history_start": HISTORY_START,
        "log_format": "json",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def synthetic_catalog(contexts: int, *, dimensions: int = 0, metrics_per_tenant: int = 100) -> Any:
    """A catalog of ``contexts`` day-grain contexts: tenants of up to 100 metrics each."""
    from fulcrum_sync.catalog import Catalog, DimensionDef, MetricDef, TenantDef
    from fulcrum_sync.domain import Grain

    dims = tuple(
        DimensionDef(dimension_id=f"d{k}", member=f"orders.d{k}") for k in range(dimensions)
    )
    tenants = []
    made = 0
    tenant_id = 0
    while made < contexts:
        count = min(metrics_per_tenant, contexts - made)
        metrics = tuple(
            MetricDef(
                metric_id=f"m{j:03d}",
                measure=f"orders.measure_{j}",
                time_dimension="orders.created_at",
                dimensions=dims,
                grains=(Grain.DAY,),
            )
            for j in range(count)
        )
        tenants.append(
            TenantDef(tenant_id=tenant_id, identifier=f"t{tenant_id:04d}", metrics=metrics)
        )
        made += count
        tenant_id += 1
    return Catalog(tenants=tuple(tenants))


def prepare_state(database_url: str, catalog: Any) -> None:
    """Create the schema, store ``catalog`` and discover its day contexts."""
    from fulcrum_sync.domain import Grain
    from fulcrum_sync.services.contexts import catalog as catalog_service
    from fulcrum_sync.services.contexts import discover
    from fulcrum_sync.store.engine import open_engine

    engine = open_engine(database_url)
    try:
        catalog_service.save_catalog(engine, catalog, HISTORY_START)
        # "cube": a source with a catalog of its own (not the demo, which fills an empty one)
        discover.discover(engine, "cube", HISTORY_START, Grain.DAY)
    finally:
        engine.dispose()


class InstantSource:
    """A source that answers at once with a prebuilt list (empty by default)."""

    name = "instant"

    def __init__(self, rows: list[Any] | None = None) -> None:
        self.rows: list[Any] = rows or []
        self.calls = 0

    def fetch_series(self, request: Any) -> list[Any]:
        self.calls += 1
        return self.rows

    def fetch_metadata(self, tenant: str) -> Any:
        from fulcrum_sync.sources.base import SourceMetadata

        return SourceMetadata()

    def stats(self) -> Any:
        from fulcrum_sync.domain import SourceStats

        return SourceStats()

    def close(self) -> None:
        pass
