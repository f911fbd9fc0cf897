"""The catalog: YAML validation, the demo catalog, active contexts and definition hashes."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from fulcrum_sync.catalog import (
    Catalog,
    DimensionDef,
    MetricDef,
    active_contexts,
    check_metric,
    demo_catalog,
    find_tenant,
    parse_catalog,
    read_catalog,
)
from fulcrum_sync.domain import Grain, InputError, MetricContext, PatternContext
from fulcrum_sync.services.contexts.catalog import expand_targets

GOOD = """\
tenants:
  - tenant_id: 1
    identifier: acme
    metrics:
      - metric_id: new_revenue
        label: New revenue
        measure: orders.total_amount
        time_dimension: orders.created_at
        dimensions:
          - {dimension_id: region, member: orders.region}
        grains: [daily, week]
        patterns: [performance_status]
        targets: {day: 100, week: {"2025-W28": 700, "2025-07-14": 710}}
      - metric_id: orders
        measure: orders.count
        time_dimension: orders.created_at
"""


def _error(text: str, origin: str = "cat.yaml") -> str:
    with pytest.raises(InputError) as info:
        parse_catalog(text, origin)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_parse_a_valid_catalog() -> None:
    catalog = parse_catalog(GOOD, "cat.yaml")
    (tenant,) = catalog.tenants
    assert tenant.identifier == "acme" and tenant.active and tenant.cache_enabled
    revenue, orders = tenant.metrics
    assert revenue.grains == (Grain.DAY, Grain.WEEK)  # "daily" stored as the short form
    assert revenue.dimensions == (DimensionDef(dimension_id="region", member="orders.region"),)
    assert revenue.targets[Grain.DAY] == 100.0
    assert revenue.targets[Grain.WEEK] == {"2025-W28": 700.0, "2025-07-14": 710.0}
    assert orders.grains == (Grain.DAY,) and orders.patterns == () and orders.label == ""


def test_yaml_syntax_error_names_file_and_line() -> None:
    text = "tenants:\n  - tenant_id: 1\n    identifier: acme\n   bad: [unclosed\n"
    message = _error(text, "broken.yaml")
    assert message.startswith("invalid YAML in broken.yaml:")
    line = int(message.split("broken.yaml:", 1)[1].split(":", 1)[0])
    assert line == 4


def test_yaml_syntax_error_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text("tenants:\n  - tenant_id: 1\n\tidentifier: acme\n")
    with pytest.raises(InputError, match=re.escape(f"invalid YAML in {path}:3: ")):
        read_catalog(path)


def test_missing_required_field_names_its_path() -> None:
    text = GOOD.replace("        measure: orders.count\n", "")
    message = _error(text)
    assert "invalid catalog cat.yaml: tenants[0](acme).metrics[1](orders).measure" in message
    assert "Field required" in message


def test_missing_tenant_field_names_its_path() -> None:
    message = _error("tenants:\n  - identifier: acme\n")
    assert "tenants[0](acme).tenant_id: Field required" in message


def test_unknown_field_is_refused() -> None:
    message = _error(GOOD.replace("        label: New revenue\n", "        lable: New revenue\n"))
    assert "tenants[0](acme).metrics[0](new_revenue).lable" in message


def test_bad_grain_in_catalog_names_the_path() -> None:
    message = _error(GOOD.replace("[daily, week]", "[daily, fortnight]"))
    assert "tenants[0](acme).metrics[0](new_revenue).grains" in message
    assert "'fortnight'" in message and "day, week, month" in message


def test_bad_target_period_names_the_path() -> None:
    message = _error(GOOD.replace('"2025-W28": 700', '"2025-07": 700'))
    assert "tenants[0](acme).metrics[0](new_revenue).targets" in message
    assert "'2025-07'" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "tenants:\n  - {tenant_id: 1, identifier: acme}\n"
            "  - {tenant_id: 2, identifier: acme}\n",
            "duplicate tenant identifier: acme",
        ),
        (
            "tenants:\n  - {tenant_id: 1, identifier: acme}\n  - {tenant_id: 1, identifier: b}\n",
            "duplicate tenant tenant_id: 1",
        ),
        (
            GOOD.replace("metric_id: orders", "metric_id: new_revenue"),
            "duplicate metric new_revenue",
        ),
        (GOOD.replace("[daily, week]", "[daily, day]"), "duplicate grain day"),
        (
            GOOD.replace("[performance_status]", "[performance_status, performance_status]"),
            "duplicate pattern performance_status",
        ),
        (
            GOOD.replace(
                "          - {dimension_id: region, member: orders.region}\n",
                "          - {dimension_id: region, member: orders.region}\n"
                "          - {dimension_id: region, member: orders.country}\n",
            ),
            "duplicate dimension region",
        ),
    ],
)
def test_duplicates_are_refused(text: str, expected: str) -> None:
    assert expected in _error(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- a\n- b\n", "expected a mapping with 'tenants'"),
        ("tenants:\n  - {tenant_id: 1, identifier: 'a b'}\n", "tenants[0](a b).identifier"),
        ("tenants:\n  - {tenant_id: -1, identifier: acme}\n", "tenants[0](acme).tenant_id"),
    ],
)
def test_other_invalid_catalogs(text: str, expected: str) -> None:
    assert expected in _error(text)


def test_empty_file_is_an_empty_catalog() -> None:
    assert parse_catalog("", "empty.yaml") == Catalog()


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"cannot read catalog .*missing\.yaml"):
        read_catalog(tmp_path / "missing.yaml")


# --------------------------------------------------------------------------- demo catalog


def test_demo_catalog_shape() -> None:
    catalog = demo_catalog()
    taking_part = [t for t in catalog.tenants if t.active and t.cache_enabled]
    assert len(taking_part) >= 3
    for tenant in taking_part:
        assert len(tenant.metrics) >= 4, tenant.identifier
        for metric in tenant.metrics:
            assert 2 <= len(metric.dimensions) <= 3, metric.metric_id
            assert metric.grains and metric.patterns
    assert any(not t.cache_enabled for t in catalog.tenants)
    assert any(not m.active for t in taking_part for m in t.metrics)
    with_targets = [m for t in taking_part for m in t.metrics if m.targets]
    assert with_targets and len(with_targets) < sum(len(t.metrics) for t in taking_part)
    assert {g for t in catalog.tenants for m in t.metrics for g in m.grains} == set(Grain)


def test_active_contexts_filter_tenants_and_metrics() -> None:
    catalog = demo_catalog()
    contexts = active_contexts(catalog)
    tenants = {c.tenant.identifier for c in contexts}
    excluded = {t.identifier for t in catalog.tenants if not (t.active and t.cache_enabled)}
    assert excluded and not tenants & excluded
    inactive = {
        (t.identifier, m.metric_id) for t in catalog.tenants for m in t.metrics if not m.active
    }
    assert inactive
    assert not {(c.tenant.identifier, c.metric.metric_id) for c in contexts} & inactive
    expected = sum(
        len(m.grains)
        for t in catalog.tenants
        if t.active and t.cache_enabled
        for m in t.metrics
        if m.active
    )
    assert len(contexts) == expected
    weekly = active_contexts(catalog, Grain.WEEK)
    assert weekly and all(c.grain is Grain.WEEK for c in weekly)
    assert len(weekly) < len(contexts)


def test_context_def_names() -> None:
    ctx = next(c for c in active_contexts(demo_catalog()) if c.metric.patterns)
    assert ctx.context == MetricContext(ctx.tenant.identifier, ctx.metric.metric_id)
    assert ctx.pattern_contexts == [
        PatternContext(ctx.tenant.identifier, ctx.metric.metric_id, p) for p in ctx.metric.patterns
    ]


def test_demo_targets_expand() -> None:
    rows = expand_targets(demo_catalog(), date(2025, 7, 1), today=date(2025, 8, 1))
    assert rows
    monthly = [r for r in rows if r[1] == "new_revenue" and r[2] == "month"]
    assert (1, "new_revenue", "month", date(2025, 7, 1), 600000.0) in monthly
    daily = sorted(r[3] for r in rows if r[1] == "new_revenue" and r[2] == "day")
    assert daily[0] == date(2025, 7, 1) and daily[-1] == date(2026, 12, 31)
    weekly = sorted(
        r[3] for r in rows if r[0] == 1 and r[1] == "churned_accounts" and r[2] == "week"
    )
    assert weekly[0] == date(2025, 6, 30)  # the week containing the history start


def test_find_tenant_and_check_metric() -> None:
    catalog = demo_catalog()
    assert find_tenant(catalog, "acme").tenant_id == 1
    with pytest.raises(InputError, match="unknown tenant 'nope': known tenants are acme"):
        find_tenant(catalog, "nope")
    check_metric(catalog, "acme", "new_revenue")
    with pytest.raises(InputError, match="unknown metric 'mrr' for tenant acme"):
        check_metric(catalog, "acme", "mrr")


# --------------------------------------------------------------------------- hashes


def _metric(**changes: object) -> MetricDef:
    base: dict[str, object] = {
        "metric_id": "new_revenue",
        "label": "New revenue",
        "measure": "orders.total_amount",
        "time_dimension": "orders.created_at",
        "dimensions": [{"dimension_id": "region", "member": "orders.region"}],
        "grains": ["day"],
        "patterns": ["performance_status"],
    }
    return MetricDef.model_validate({**base, **changes})


def test_definition_hash_follows_what_decides_the_data() -> None:
    base = _metric()
    assert base.definition_hash() == _metric().definition_hash()
    for changed in (
        _metric(measure="orders.net_amount"),
        _metric(time_dimension="orders.paid_at"),
        _metric(dimensions=[{"dimension_id": "region", "member": "orders.country"}]),
        _metric(dimensions=[]),
    ):
        assert changed.definition_hash() != base.definition_hash()
    for same in (
        _metric(label="Revenue (new)"),
        _metric(grains=["day", "week"]),
        _metric(patterns=[]),
        _metric(targets={"day": 5}),
    ):
        assert same.definition_hash() == base.definition_hash()


def test_series_hash_is_per_dimension() -> None:
    base = _metric()
    region = base.dimension("region")
    assert region is not None and base.dimension("nope") is None
    moved = _metric(dimensions=[{"dimension_id": "region", "member": "orders.country"}])
    assert moved.series_hash(moved.dimension("region")) != base.series_hash(region)
    assert moved.series_hash(None) == base.series_hash(None)  # the base series did not change
    assert _metric(measure="x.y").series_hash(None) != base.series_hash(None)
    assert _metric(label="other").series_hash(region) == base.series_hash(region)
