"""Store the catalog (tenants, metric definitions, targets) and read it back."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import Engine, delete, func, insert, select

from fulcrum_sync.catalog import Catalog, DimensionDef, MetricDef, TenantDef
from fulcrum_sync.domain import StoreError
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import reconnecting, serialize, translate_errors

if TYPE_CHECKING:  # built when a catalog is saved; a job reading the catalog needs none
    from fulcrum_sync.domain import CatalogSaveResult


@reconnecting
def save_catalog(
    engine: Engine,
    catalog: Catalog,
    targets: list[tuple[int, str, str, date, float]],
    *,
    only_if_empty: bool = False,
) -> CatalogSaveResult | None:
    """Replace the stored catalog with ``catalog`` and its expanded ``targets``, atomically.

    Series, sync status and pattern results of removed metrics stay stored. With
    ``only_if_empty``, do nothing (and return None) when a catalog is already stored; the
    check and the write are one transaction, so processes starting together load it once.
    """
    now = datetime.now(UTC)
    with translate_errors(engine, "save the catalog to"), engine.begin() as conn:
        serialize(conn, "catalog")
        if only_if_empty and conn.execute(select(func.count()).select_from(t.tenants)).scalar():
            return None
        before = {
            (r.tenant_id, r.metric_id): r.definition_hash
            for r in conn.execute(
                select(
                    t.metric_definitions.c.tenant_id,
                    t.metric_definitions.c.metric_id,
                    t.metric_definitions.c.definition_hash,
                )
            )
        }
        names = {r.tenant_id: r.identifier for r in conn.execute(select(t.tenants))}
        for table in (t.metric_targets, t.metric_definitions, t.tenants):
            conn.execute(delete(table))
        tenant_rows: list[dict[str, Any]] = []
        metric_rows: list[dict[str, Any]] = []
        for tenant in catalog.tenants:
            names[tenant.tenant_id] = tenant.identifier
            tenant_rows.append(_tenant_row(tenant, now))
            metric_rows += [_metric_row(tenant, metric, now) for metric in tenant.metrics]
        if tenant_rows:
            conn.execute(insert(t.tenants), tenant_rows)
        if metric_rows:
            conn.execute(insert(t.metric_definitions), metric_rows)
        if targets:
            conn.execute(
                insert(t.metric_targets),
                [
                    {"tenant_id": tid, "metric_id": mid, "grain": g, "date": d, "value": v}
                    for tid, mid, g, d, v in targets
                ],
            )
    after = {(r["tenant_id"], r["metric_id"]): r["definition_hash"] for r in metric_rows}

    def label(key: tuple[int, str]) -> str:
        return f"{names.get(key[0], key[0])}::{key[1]}"

    from fulcrum_sync.domain import CatalogSaveResult

    return CatalogSaveResult(
        tenants=len(tenant_rows),
        metrics=len(metric_rows),
        metrics_added=sorted(label(k) for k in after.keys() - before.keys()),
        metrics_changed=sorted(
            label(k) for k in after.keys() & before.keys() if after[k] != before[k]
        ),
        metrics_removed=sorted(label(k) for k in before.keys() - after.keys()),
        targets=len(targets),
    )


def _tenant_row(tenant: TenantDef, now: datetime) -> dict[str, Any]:
    """The ``tenants`` row of ``tenant``."""
    return {
        "tenant_id": tenant.tenant_id,
        "identifier": tenant.identifier,
        "name": tenant.name,
        "active": tenant.active,
        "cache_enabled": tenant.cache_enabled,
        "pattern_settings": tenant.pattern_settings,
        "filters": [f.model_dump(mode="json") for f in tenant.filters],
        "cube": _block(tenant.cube),
        "cache": _block(tenant.cache),
        "updated_at": now,
    }


def _metric_row(tenant: TenantDef, metric: MetricDef, now: datetime) -> dict[str, Any]:
    """The ``metric_definitions`` row of one metric of ``tenant``."""
    return {
        "tenant_id": tenant.tenant_id,
        "metric_id": metric.metric_id,
        "label": metric.label,
        "definition": metric.model_dump(mode="json"),
        "definition_hash": metric.definition_hash(),
        "grains": [g.value for g in metric.grains],
        "patterns": list(metric.patterns),
        "active": metric.active,
        "updated_at": now,
    }


@reconnecting
def read_catalog(engine: Engine) -> Catalog:
    """Return the stored catalog (every tenant and metric, active or not)."""
    with translate_errors(engine, "read the catalog from"), engine.connect() as conn:
        metrics: dict[int, list[MetricDef]] = {}
        shared: dict[Any, DimensionDef] = {}
        rows = conn.execute(select(t.metric_definitions).order_by(t.metric_definitions.c.metric_id))
        for row in rows:
            try:
                metric = MetricDef.model_validate(_shared_parts(row.definition, shared))
            except ValidationError as exc:
                raise StoreError(
                    f"stored definition of metric {row.metric_id!r} (tenant {row.tenant_id}) "
                    f"is invalid: {exc.errors()[0]['msg']}; load the catalog again"
                ) from None
            metrics.setdefault(row.tenant_id, []).append(metric)
        tenants = []
        for row in conn.execute(select(t.tenants).order_by(t.tenants.c.identifier)):
            try:
                tenant = TenantDef(
                    tenant_id=row.tenant_id,
                    identifier=row.identifier,
                    name=row.name,
                    active=row.active,
                    cache_enabled=row.cache_enabled,
                    pattern_settings=row.pattern_settings or {},
                    filters=tuple(row.filters or ()),
                    cube=row.cube or None,
                    cache=row.cache or None,
                    metrics=tuple(metrics.get(row.tenant_id, [])),
                )
            except ValidationError as exc:  # stored before today's limits (a 300-letter name)
                raise StoreError(
                    f"stored tenant {row.identifier!r} ({row.tenant_id}) is invalid: "
                    f"{exc.errors()[0]['msg']}; load the catalog again"
                ) from None
            tenants.append(tenant)
    return Catalog(tenants=tuple(tenants))


def _block(block: BaseModel | None) -> dict[str, Any] | None:
    """A tenant's ``cube``/``cache`` block as stored: its fields as the catalog spells them."""
    if block is None:
        return None
    return block.model_dump(mode="json", exclude_none=True, by_alias=True)


# A metric definition's optional fields at their defaults, as the stored JSON holds them.
_DEFAULTS = {
    k: v
    for k, v in MetricDef(metric_id="m", measure="m", time_dimension="m")
    .model_dump(mode="json")
    .items()
    if k not in ("metric_id", "measure", "time_dimension")
}


def _shared_parts(definition: Any, shared: dict[Any, DimensionDef]) -> Any:
    """``definition`` with its dimensions (frozen models) and strings shared with the metrics
    read before, and its fields at their defaults left out (as in a catalog file): tenants'
    metrics repeat them, and a run holds every metric. At 10,000 metrics the catalog takes
    a third of the memory it took (the model is the same: equality ignores the fields set)."""
    if not isinstance(definition, dict):
        return definition
    out = {
        k: sys.intern(v) if isinstance(v, str) else v
        for k, v in definition.items()
        if k not in _DEFAULTS or v != _DEFAULTS[k]
    }
    dims = out.get("dimensions")
    if isinstance(dims, list) and all(isinstance(d, dict) for d in dims):
        parts = []
        for d in dims:
            if not all(isinstance(v, str) for v in d.values()):
                parts.append(d)  # left to the validation to judge
                continue
            key = tuple(sorted(d.items()))
            if key not in shared:
                shared[key] = DimensionDef.model_validate(d)  # invalid: raises, as before
            parts.append(shared[key])
        out["dimensions"] = parts
    return out


@reconnecting
def catalog_is_empty(engine: Engine) -> bool:
    """Return True when no tenant is stored."""
    with translate_errors(engine, "read the catalog from"), engine.connect() as conn:
        return not conn.execute(select(func.count()).select_from(t.tenants)).scalar_one()
