"""Tenant filters in the catalog: validation, storage (SQLite and PostgreSQL), series hashes."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, column, insert, select, table

from fulcrum_sync.catalog import ContextDef, FilterDef, active_contexts, parse_catalog
from fulcrum_sync.domain import InputError
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.catalog import read_catalog, save_catalog
from fulcrum_sync.store.engine import HEAD_REVISION, current_revision, open_engine, upgrade

CATALOG = """\
tenants:
  - tenant_id: 7
    identifier: acme
    filters:
      - {member: orders.tenant_id, operator: equals, values: [7]}
      - {member: orders.deleted_at, operator: notSet}
    metrics:
      - {metric_id: revenue, measure: orders.total, time_dimension: orders.created_at}
  - tenant_id: 8
    identifier: initech
    metrics:
      - {metric_id: revenue, measure: orders.total, time_dimension: orders.created_at}
"""


def with_filter(line: str) -> str:
    return CATALOG.replace(
        "      - {member: orders.tenant_id, operator: equals, values: [7]}\n", f"      - {line}\n"
    )


def test_filters_parse_with_numbers_as_strings() -> None:
    acme = parse_catalog(CATALOG).tenants[0]
    assert acme.filters == (
        FilterDef(member="orders.tenant_id", operator="equals", values=("7",)),
        FilterDef(member="orders.deleted_at", operator="notSet"),
    )
    assert parse_catalog(CATALOG).tenants[1].filters == ()


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "{member: orders.tenant_id, operator: eq, values: [7]}",
            "tenants[0](acme).filters[0].operator: Input should be 'equals', 'notEquals'",
        ),
        (
            "{member: orders.tenant_id, operator: equals}",
            "tenants[0](acme).filters[0]: Value error, operator equals needs at least one value",
        ),
        (
            "{member: orders.tenant_id, operator: set, values: [x]}",
            "tenants[0](acme).filters[0]: Value error, operator set takes no values",
        ),
        (
            "{member: tenant_id, operator: equals, values: [7]}",
            "filters[0].member: Value error, expected a Cube member such as orders.tenant_id, "
            "got 'tenant_id'",
        ),
        (
            "{member: orders.tenant_id, operator: equals, values: [{a: 1}]}",
            "filters[0].values[0]: Input should be a valid string",
        ),
        (
            "{member: orders.tenant_id, operator: equals, values: [7], extra: 1}",
            "filters[0].extra: Extra inputs are not permitted",
        ),
    ],
)
def test_bad_filters_name_the_field_and_what_was_expected(line: str, expected: str) -> None:
    with pytest.raises(InputError) as info:
        parse_catalog(with_filter(line), "catalog.yaml")
    assert str(info.value).startswith("invalid catalog catalog.yaml: ")
    assert expected in str(info.value)


def test_filters_change_the_series_hash_so_the_next_sync_is_full() -> None:
    acme, initech = active_contexts(parse_catalog(CATALOG))
    assert initech.series_hash(None) == initech.metric.series_hash(None)  # no filters: as before
    assert acme.series_hash(None) != acme.metric.series_hash(None)
    other = ContextDef(
        acme.tenant.model_copy(update={"filters": acme.tenant.filters[:1]}), acme.metric, acme.grain
    )
    assert other.series_hash(None) != acme.series_hash(None)


def test_filters_are_stored_and_read_back(engine: Engine) -> None:
    catalog = parse_catalog(CATALOG)
    save_catalog(engine, catalog, [])
    assert read_catalog(engine) == catalog


def test_a_database_at_0001_gains_the_filters_column(db_url: str) -> None:
    engine = open_engine(db_url, migrate=False)
    try:
        config = Config()
        location = resources.files("fulcrum_sync").joinpath("store", "migrations")
        config.set_main_option("script_location", str(location))
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0001")
        assert current_revision(engine) == "0001"
        at_0001 = [column(c.name, c.type) for c in t.tenants.c if c.name != "filters"]
        with engine.begin() as conn:  # a tenant stored before the column existed
            row = {"tenant_id": 1, "identifier": "acme", "name": "", "active": True}
            row |= {"cache_enabled": True, "pattern_settings": {}, "updated_at": datetime.now(UTC)}
            conn.execute(insert(table("tenants", *at_0001)), [row])
        with engine.begin() as conn:  # 0002 itself (later revisions add other tables)
            config.attributes["connection"] = conn
            command.upgrade(config, "0002")
        assert current_revision(engine) == "0002"
        with engine.connect() as conn:
            assert conn.execute(select(t.tenants.c.filters)).scalar_one() == []
        assert upgrade(engine) == HEAD_REVISION
        assert read_catalog(engine).tenants[0].filters == ()
    finally:
        engine.dispose()
