"""The state database: schema, catalog storage and contexts, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, Row, Table, func, insert, inspect, select

from fulcrum_sync.catalog import Catalog, demo_catalog, parse_catalog
from fulcrum_sync.domain import Grain
from fulcrum_sync.services.contexts import catalog as svc
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.catalog import catalog_is_empty, read_catalog
from fulcrum_sync.store.contexts import ContextKey, active_context_keys, save_contexts
from fulcrum_sync.store.engine import HEAD_REVISION, current_revision, open_engine, upgrade

HISTORY = date(2025, 7, 1)

CATALOG = """\
tenants:
  - tenant_id: 7
    identifier: zeta
    name: Zeta
    pattern_settings: {performance_status: {threshold: 0.2}}
    metrics:
      - metric_id: signups
        label: Signups
        measure: users.count
        time_dimension: users.created_at
        dimensions:
          - {dimension_id: plan, member: users.plan}
          - {dimension_id: region, member: users.region}
        grains: [day, month]
        patterns: [performance_status, data_quality]
        targets: {month: {"2025-07": 10, "2025-08": 12}}
      - metric_id: churn
        measure: users.churned
        time_dimension: users.churned_at
        grains: [week]
        active: false
  - tenant_id: 8
    identifier: eta
    cache_enabled: false
"""


def _sorted(catalog: Catalog) -> Catalog:
    tenants = sorted(catalog.tenants, key=lambda x: x.identifier)
    return Catalog(
        tenants=tuple(
            x.model_copy(update={"metrics": tuple(sorted(x.metrics, key=lambda m: m.metric_id))})
            for x in tenants
        )
    )


def _count(engine: Engine, table: Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


# --------------------------------------------------------------------------- schema


def test_migrations_create_every_table(engine: Engine) -> None:
    names = set(inspect(engine).get_table_names())
    assert set(t.metadata.tables) | {"alembic_version"} == names
    for required in (
        "tenants",
        "metric_definitions",
        "contexts",
        "metric_time_series",
        "metric_dimensional_time_series",
        "metric_sync_status",
        "pattern_results",
        "runs",
        "run_items",
    ):
        assert required in names
    assert current_revision(engine) == HEAD_REVISION


def test_migrations_match_the_table_definitions(engine: Engine) -> None:
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), t.metadata) == []


def test_head_revision_is_the_newest_migration(engine: Engine) -> None:
    from importlib import resources

    from alembic.config import Config

    config = Config()
    location = resources.files("fulcrum_sync").joinpath("store", "migrations")
    config.set_main_option("script_location", str(location))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD_REVISION


def test_upgrade_twice_is_a_no_op(db_url: str) -> None:
    engine = open_engine(db_url, migrate=False)
    try:
        assert current_revision(engine) is None
        assert upgrade(engine) == HEAD_REVISION
        svc.save_catalog(engine, demo_catalog(), HISTORY)
        tenants = _count(engine, t.tenants)
        assert upgrade(engine) == HEAD_REVISION
        assert current_revision(engine) == HEAD_REVISION
        assert _count(engine, t.tenants) == tenants
    finally:
        engine.dispose()


def test_empty_sqlite_file_is_set_up_on_first_use(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    engine = open_engine(f"sqlite:///{path}")
    try:
        assert current_revision(engine) == HEAD_REVISION
        assert catalog_is_empty(engine)
    finally:
        engine.dispose()


def test_missing_sqlite_file_is_created(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    engine = open_engine(f"sqlite:///{path}")
    engine.dispose()
    assert path.exists()


# --------------------------------------------------------------------------- catalog


def test_save_and_read_catalog_round_trip(engine: Engine) -> None:
    assert catalog_is_empty(engine)
    catalog = parse_catalog(CATALOG, "cat.yaml")
    result = svc.save_catalog(engine, catalog, HISTORY)
    assert (result.tenants, result.metrics, result.targets) == (2, 2, 2)
    assert result.metrics_added == ["zeta::churn", "zeta::signups"]
    assert result.metrics_changed == result.metrics_removed == []
    assert not catalog_is_empty(engine)
    assert read_catalog(engine) == _sorted(catalog)
    with engine.connect() as conn:
        targets = conn.execute(
            select(t.metric_targets.c.date, t.metric_targets.c.value).order_by("date")
        ).all()
        hashes = dict(
            conn.execute(
                select(t.metric_definitions.c.metric_id, t.metric_definitions.c.definition_hash)
            ).all()
        )
    assert [(r.date, r.value) for r in targets] == [
        (date(2025, 7, 1), 10.0),
        (date(2025, 8, 1), 12.0),
    ]
    assert hashes["signups"] == catalog.tenants[0].metrics[0].definition_hash()


def test_demo_catalog_round_trip(engine: Engine) -> None:
    catalog = demo_catalog()
    svc.save_catalog(engine, catalog, HISTORY)
    assert read_catalog(engine) == _sorted(catalog)


def test_save_catalog_reports_changes_and_replaces(engine: Engine) -> None:
    svc.save_catalog(engine, parse_catalog(CATALOG), HISTORY)
    changed = CATALOG.replace("users.plan", "users.tier").replace(
        "      - metric_id: churn\n", "      - metric_id: churn2\n"
    )
    result = svc.save_catalog(engine, parse_catalog(changed), HISTORY)
    assert result.metrics_added == ["zeta::churn2"]
    assert result.metrics_removed == ["zeta::churn"]
    assert result.metrics_changed == ["zeta::signups"]
    stored = read_catalog(engine)
    assert [m.metric_id for m in stored.tenants[1].metrics] == ["churn2", "signups"]
    relabel = changed.replace("label: Signups", "label: Sign-ups")
    assert svc.save_catalog(engine, parse_catalog(relabel), HISTORY).metrics_changed == []


def test_removed_metric_keeps_its_series(engine: Engine) -> None:
    svc.save_catalog(engine, parse_catalog(CATALOG), HISTORY)
    with engine.begin() as conn:
        conn.execute(
            insert(t.metric_time_series),
            [
                {
                    "tenant_id": 7,
                    "metric_id": "signups",
                    "grain": "day",
                    "date": date(2025, 7, 1),
                    "value": 1.0,
                }
            ],
        )
    svc.save_catalog(engine, Catalog(), HISTORY)
    assert catalog_is_empty(engine)
    assert _count(engine, t.metric_time_series) == 1


# --------------------------------------------------------------------------- contexts


def _contexts(engine: Engine) -> dict[ContextKey, Row[Any]]:
    with engine.connect() as conn:
        return {
            (r.tenant_id, r.metric_id, r.grain, r.pattern): r
            for r in conn.execute(select(t.contexts))
        }


def test_contexts_are_deactivated_never_deleted_and_reactivated(engine: Engine) -> None:
    a: ContextKey = (1, "m", "day", "")
    ap: ContextKey = (1, "m", "day", "performance_status")
    b: ContextKey = (1, "n", "day", "")
    changes = save_contexts(engine, {a: "acme", ap: "acme", b: "acme"})
    assert changes.added == ["acme::m::performance_status@day", "acme::m@day", "acme::n@day"]
    assert changes.deactivated == changes.reactivated == [] and changes.unchanged == 0

    again = save_contexts(engine, {a: "acme", ap: "acme", b: "acme"})
    assert (again.added, again.deactivated, again.unchanged) == ([], [], 3)

    gone = save_contexts(engine, {a: "acme"})
    assert gone.deactivated == ["acme::m::performance_status@day", "acme::n@day"]
    assert gone.unchanged == 1
    rows = _contexts(engine)
    assert len(rows) == 3  # never deleted
    assert not rows[b].active and rows[b].deactivated_at is not None
    assert rows[a].active and rows[a].deactivated_at is None
    assert active_context_keys(engine) == {a}
    assert save_contexts(engine, {a: "acme"}).deactivated == []  # reported once

    back = save_contexts(engine, {a: "acme", b: "acme"})
    assert back.reactivated == ["acme::n@day"] and back.added == []
    rows = _contexts(engine)
    assert rows[b].active and rows[b].deactivated_at is None
    assert rows[b].first_seen < rows[b].last_seen
    assert active_context_keys(engine) == {a, b}


def test_contexts_of_one_grain_leave_the_others_alone(engine: Engine) -> None:
    day: ContextKey = (1, "m", "day", "")
    week: ContextKey = (1, "m", "week", "")
    save_contexts(engine, {day: "acme", week: "acme"})
    changes = save_contexts(engine, {}, Grain.WEEK)
    assert changes.deactivated == ["acme::m@week"]
    assert active_context_keys(engine) == {day}
    assert active_context_keys(engine, Grain.DAY) == {day}
    assert active_context_keys(engine, Grain.WEEK) == set()


def test_contexts_follow_a_renamed_tenant(engine: Engine) -> None:
    key: ContextKey = (1, "m", "day", "")
    save_contexts(engine, {key: "acme"})
    save_contexts(engine, {key: "acme-corp"})
    assert _contexts(engine)[key].tenant == "acme-corp"


def test_changes_grouped_by_metric_context(engine: Engine) -> None:
    keys: list[ContextKey] = [
        (1, "m", "week", ""),
        (1, "m", "week", "forecasting"),
        (1, "m", "day", ""),
        (1, "m", "day", "forecasting"),
        (1, "m", "day", "data_quality"),
    ]
    save_contexts(engine, dict.fromkeys(keys[:3], "acme"))
    changes = save_contexts(engine, dict.fromkeys(keys[1:], "acme"))
    groups = changes.by_metric_context()
    assert [(g.context, g.grain, g.change) for g in groups] == [
        ("acme::m", "day", "unchanged"),
        ("acme::m", "week", "deactivated"),
    ]
    assert groups[0].patterns == {"added": ["data_quality", "forecasting"]}
    assert groups[1].patterns == {}
