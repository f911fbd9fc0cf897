"""The catalog: tenants and their metric definitions, validated from YAML."""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from fulcrum_sync.catalog_connections import (
    CacheDestination,
    CubeConnection,
    inline_secret_problem,
)
from fulcrum_sync.catalog_file import load_yaml, read_text
from fulcrum_sync.domain import (
    CatalogError,
    Grain,
    InputError,
    MetricContext,
    PatternContext,
    parse_period,
)

IDENTIFIER_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,62}$"
DEMO_CATALOG = "demo_catalog.yaml"

# Limits that match the state database's columns (store/tables.py).
MAX_TENANT_ID = 2**31 - 1  # tenants.tenant_id: a 32-bit INTEGER on PostgreSQL
MAX_TEXT = 200  # tenants.name, metric_definitions.label: VARCHAR(200)
MAX_MEMBER = 255  # a Cube member name (``cube.member``), kept in the definition's JSON
MAX_PROBLEMS_SHOWN = 20


def _target_kind(value: Any) -> str:
    return "periods" if isinstance(value, dict) else "value"


# One number for every period, or {period: number}; only the matching branch is validated,
# so a bad target gets one error, not one per branch.
TargetSpec = Annotated[
    Annotated[float, Tag("value")] | Annotated[dict[str, float], Tag("periods")],
    Discriminator(_target_kind),
]
_TARGET_TAGS = ("value", "periods")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DimensionDef(_Model):
    """A dimension: the name stored with the data and its Cube member."""

    dimension_id: str = Field(pattern=IDENTIFIER_PATTERN)
    member: str = Field(min_length=1, max_length=MAX_MEMBER)


class MetricDef(_Model):
    """How to ask the semantic layer for one tenant's metric, and what to run on it."""

    metric_id: str = Field(pattern=IDENTIFIER_PATTERN)
    label: str = Field(default="", max_length=MAX_TEXT)
    measure: str = Field(min_length=1, max_length=MAX_MEMBER)
    time_dimension: str = Field(min_length=1, max_length=MAX_MEMBER)
    dimensions: tuple[DimensionDef, ...] = ()
    grains: tuple[Grain, ...] = (Grain.DAY,)
    patterns: tuple[str, ...] = ()
    active: bool = True
    targets: dict[Grain, TargetSpec] = Field(default_factory=dict)

    @field_validator("grains", mode="before")
    @classmethod
    def _parse_grains(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return tuple(_grain(v) if isinstance(v, str) else v for v in value)
        return value

    @field_validator("targets", mode="before")
    @classmethod
    def _parse_target_grains(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {_grain(k) if isinstance(k, str) else k: v for k, v in value.items()}
        return value

    @field_validator("targets")
    @classmethod
    def _check_target_periods(cls, value: dict[Grain, TargetSpec]) -> dict[Grain, TargetSpec]:
        for grain, spec in value.items():
            for key in spec if isinstance(spec, dict) else ():
                try:
                    parse_period(grain, key)
                except InputError as exc:
                    raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _unique_parts(self) -> MetricDef:
        for name, values in (
            ("grain", [g.value for g in self.grains]),
            ("pattern", list(self.patterns)),
            ("dimension", [d.dimension_id for d in self.dimensions]),
        ):
            dupes = _duplicates(values)
            if dupes:
                raise ValueError(f"duplicate {name} {', '.join(dupes)}")
        return self

    def dimension(self, dimension_id: str) -> DimensionDef | None:
        return next((d for d in self.dimensions if d.dimension_id == dimension_id), None)

    def definition_hash(self) -> str:
        """Hash of what decides the fetched data; a change forces a FULL sync."""
        return _hash([self.measure, self.time_dimension, [d.model_dump() for d in self.dimensions]])

    def series_hash(self, dimension: DimensionDef | None) -> str:
        """Hash of one series' definition (the base series, or one dimension's)."""
        return _series_hash(
            self.measure, self.time_dimension, dimension.member if dimension else None
        )


FilterOperator = Literal[
    "equals",
    "notEquals",
    "contains",
    "notContains",
    "startsWith",
    "notStartsWith",
    "endsWith",
    "notEndsWith",
    "gt",
    "gte",
    "lt",
    "lte",
    "set",
    "notSet",
    "inDateRange",
    "notInDateRange",
    "beforeDate",
    "beforeOrOnDate",
    "afterDate",
    "afterOrOnDate",
]


class FilterDef(_Model):
    """A Cube filter object added to every query of a tenant (``{member, operator, values}``).

    Cube compares strings: numbers in ``values`` are sent as strings. ``set`` and ``notSet``
    take no values; every other operator needs at least one.
    """

    member: str
    operator: FilterOperator
    values: tuple[str, ...] = ()

    @field_validator("member")
    @classmethod
    def _cube_member(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_]\w*\.[A-Za-z_][\w.]*", value):
            raise ValueError(f"expected a Cube member such as orders.tenant_id, got {value!r}")
        return value

    @field_validator("values", mode="before")
    @classmethod
    def _values_as_strings(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return tuple(
                str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
                for v in value
            )
        return value

    @model_validator(mode="after")
    def _values_fit_operator(self) -> FilterDef:
        if self.operator in ("set", "notSet") and self.values:
            raise ValueError(f"operator {self.operator} takes no values")
        if self.operator not in ("set", "notSet") and not self.values:
            raise ValueError(f"operator {self.operator} needs at least one value")
        return self


class TenantDef(_Model):
    """A customer of the platform and its metrics.

    ``filters`` scope every query of the tenant in Cube (for a Cube that keys tenants by a
    column and has no queryRewrite on the JWT's security context). ``cube`` and ``cache``
    are the tenant's own Cube and Snowflake cache; without them the settings' are used.
    """

    tenant_id: int = Field(ge=0, le=MAX_TENANT_ID)
    identifier: str = Field(pattern=IDENTIFIER_PATTERN)
    name: str = Field(default="", max_length=MAX_TEXT)
    active: bool = True
    cache_enabled: bool = True
    pattern_settings: dict[str, dict[str, Any]] = Field(default_factory=dict)
    filters: tuple[FilterDef, ...] = ()
    cube: CubeConnection | None = None
    cache: CacheDestination | None = None
    metrics: tuple[MetricDef, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _no_inline_secret(cls, data: Any) -> Any:
        inline_secret_problem(data, "tenant")
        return data


class Catalog(_Model):
    """The whole catalog file."""

    tenants: tuple[TenantDef, ...] = ()

    @field_validator("tenants")
    @classmethod
    def _unique(cls, tenants: tuple[TenantDef, ...]) -> tuple[TenantDef, ...]:
        # Counting, not list.count: linear in the number of tenants (20,000 load in seconds).
        problems = []
        for attr in ("tenant_id", "identifier"):
            dupes = _duplicates([getattr(t, attr) for t in tenants])
            if dupes:
                problems.append(f"duplicate tenant {attr}: {', '.join(dupes)}")
        for tenant in tenants:
            dupes = _duplicates([m.metric_id for m in tenant.metrics])
            if dupes:
                problems.append(f"tenant {tenant.identifier}: duplicate metric {', '.join(dupes)}")
        if problems:
            raise ValueError("; ".join(problems))
        return tenants


def _duplicates(values: list[Any]) -> list[str]:
    """The values that occur more than once, as sorted strings."""
    if len(set(values)) == len(values):  # the usual case, without building a Counter
        return []
    return sorted(str(v) for v, n in Counter(values).items() if n > 1)


def _grain(value: str) -> Grain:
    # pydantic reports ValueError with the field's path; an InputError would lose it.
    try:
        return Grain.parse(value)
    except InputError as exc:
        raise ValueError(str(exc)) from None


@functools.lru_cache(maxsize=4096)
def _series_hash(
    measure: str, time_dimension: str, member: str | None, filters: tuple[FilterDef, ...] = ()
) -> str:
    # A sync asks for each series' hash to decide FULL or INCREMENTAL and to record it.
    own = _hash([measure, time_dimension, member])
    return _hash([own, [f.model_dump() for f in filters]]) if filters else own


def _hash(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def parse_catalog(text: str, origin: str = "<catalog>") -> Catalog:
    """Validate catalog YAML; raise InputError naming the file and line or the field path.

    Raises CatalogError (an InputError) listing every validation problem, each with its
    field path (``tenants[0](acme).metrics[1](orders).measure: Field required``).
    """
    data = load_yaml(text, origin)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError(f"invalid catalog {origin}: expected a mapping with 'tenants'")
    try:
        return Catalog.model_validate(data)
    except ValidationError as exc:
        problems = [f"{_field_path(data, e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise CatalogError(origin, problems, MAX_PROBLEMS_SHOWN, data) from None


def _field_path(data: Any, loc: tuple[int | str, ...]) -> str:
    """Render a pydantic location readably: ``tenants[0](acme).metrics[1].measure``."""
    out = ""
    node = data
    for i, part in enumerate(loc):
        if i >= 2 and loc[i - 2] == "targets" and part in _TARGET_TAGS:
            continue  # the union branch a target was checked against, not a field
        if isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            if isinstance(node, dict):
                name = node.get("identifier") or node.get("metric_id")
                if name:
                    out += f"({name})"
        else:
            out += f".{part}" if out else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out or "catalog"


def read_catalog(path: Path) -> Catalog:
    """Read and validate a catalog file.

    Raises InputError naming the file: unreadable, too large, not UTF-8 (UTF-16 is named),
    bad YAML, nested too deeply, or CatalogError listing every validation problem.
    """
    return parse_catalog(read_text(path), str(path))


def demo_catalog() -> Catalog:
    """The demo catalog shipped inside the package."""
    text = resources.files("fulcrum_sync").joinpath("data", DEMO_CATALOG).read_text("utf-8")
    return parse_catalog(text, DEMO_CATALOG)


@dataclass(frozen=True, slots=True)
class ContextDef:
    """An active context with everything needed to work on it."""

    tenant: TenantDef
    metric: MetricDef
    grain: Grain

    @property
    def context(self) -> MetricContext:
        return MetricContext(self.tenant.identifier, self.metric.metric_id)

    def series_hash(self, dimension: DimensionDef | None) -> str:
        """Hash of what one series fetches: the metric's definition and the tenant's filters.

        Without filters it is the metric's own hash, so adding this changed no stored hash.
        """
        metric, member = self.metric, dimension.member if dimension else None
        return _series_hash(metric.measure, metric.time_dimension, member, self.tenant.filters)

    @property
    def pattern_contexts(self) -> list[PatternContext]:
        return [
            PatternContext(self.tenant.identifier, self.metric.metric_id, p)
            for p in self.metric.patterns
        ]


def active_contexts(catalog: Catalog, grain: Grain | None = None) -> list[ContextDef]:
    """Return the contexts that take part: active tenants with the cache enabled, active metrics."""
    return [
        ContextDef(tenant, metric, g)
        for tenant in catalog.tenants
        if tenant.active and tenant.cache_enabled
        for metric in tenant.metrics
        if metric.active
        for g in metric.grains
        if grain is None or g is grain
    ]


def find_tenant(catalog: Catalog, identifier: str) -> TenantDef:
    """Return the tenant named ``identifier``; raise InputError listing the known ones."""
    for tenant in catalog.tenants:
        if tenant.identifier == identifier:
            return tenant
    known = ", ".join(t.identifier for t in catalog.tenants) or "none (load a catalog first)"
    raise InputError(f"unknown tenant {identifier!r}: known tenants are {known}")


def check_metric(catalog: Catalog, tenant: str | None, metric_id: str) -> None:
    """Raise InputError when no (matching) tenant defines ``metric_id``."""
    scope = [t for t in catalog.tenants if tenant is None or t.identifier == tenant]
    known = sorted({m.metric_id for t in scope for m in t.metrics})
    if metric_id not in known:
        where = f" for tenant {tenant}" if tenant else ""
        raise InputError(
            f"unknown metric {metric_id!r}{where}: known metrics are {', '.join(known) or 'none'}"
        )


def dump_catalog(catalog: Catalog) -> str:
    """Return ``catalog`` as YAML that :func:`parse_catalog` reads back to an equal catalog.

    Fields left at their defaults are left out, so new fields round-trip without changes here.
    """
    import yaml

    data = catalog.model_dump(mode="json", exclude_defaults=True, by_alias=True)
    return str(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100))
