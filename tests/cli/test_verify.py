"""``verify``: source vs state vs cache on the demo source, read-only, exit 0 or 1."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from cli_invoke import Cli
from sqlalchemy import and_, delete, func, select, update

from fulcrum_sync.services.deps import Deps
from fulcrum_sync.sinks.local import cache_table
from fulcrum_sync.sources.base import FetchRequest, SeriesRow
from fulcrum_sync.sources.demo import DemoSource
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import open_engine

TODAY = "2025-10-02"
DAY = date(2025, 9, 15)


@pytest.fixture
def synced(cli: Cli) -> Cli:
    """The CLI on a demo database whose day grain is synced and cache-loaded."""
    synced = cli.but(today=TODAY)
    assert synced("sync", "--grain", "day").exit_code == 0
    assert synced("cache-load", "--grain", "day").exit_code == 0
    return synced


def execute(url: str, statement: Any) -> int:
    engine = open_engine(url, migrate=False)
    try:
        with engine.begin() as conn:
            return conn.execute(statement).rowcount
    finally:
        engine.dispose()


def orders_value(url: str) -> float:
    c = t.metric_time_series.c
    engine = open_engine(url, migrate=False)
    try:
        with engine.connect() as conn:
            where = and_(c.tenant_id == 1, c.metric_id == "orders", c.grain == "day", c.date == DAY)
            return float(conn.execute(select(c.value).where(where)).scalar_one())
    finally:
        engine.dispose()


def test_a_freshly_synced_and_loaded_database_verifies_equal(synced: Cli) -> None:
    result = synced("verify", "--grain", "day")
    assert result.exit_code == 0, result.output
    assert "0 differ, 0 not compared; 0 differences" in result.stdout
    assert "Read-only: nothing was changed." in result.stdout
    payload = json.loads(synced("verify", "--grain", "day", "--json").stdout)
    assert payload["outcome"] == "succeeded" and payload["lines"] == []
    checks = payload["contexts"]
    assert checks and all(c["source_rows"] == c["state_rows"] == c["cache_rows"] for c in checks)


def test_a_value_changed_by_hand_is_named_with_its_date_and_both_values(
    synced: Cli, db_url: str
) -> None:
    stored = orders_value(db_url)
    c = t.metric_time_series.c
    where = and_(c.tenant_id == 1, c.metric_id == "orders", c.grain == "day", c.date == DAY)
    assert execute(db_url, update(t.metric_time_series).where(where).values(value=stored + 7)) == 1
    before = json.loads(synced("state", "show", "--json", "-t", "acme").stdout)

    result = synced("verify", "--grain", "day", "--tenant", "acme")
    assert result.exit_code == 1, result.output
    line = next(x for x in result.stdout.splitlines() if "value differs" in x and "cache" not in x)
    assert line.startswith("acme::orders base 2025-09-15: value differs")
    assert f"source {stored:.10g}" in line and f"state {stored + 7:.10g}" in line
    assert "fulcrum-sync sync --grain day --tenant acme --metric orders --force-full" in line
    assert "1 differ" in result.stdout  # only orders; the cache line names it too
    assert orders_value(db_url) == stored + 7  # read-only: nothing fixed
    after = json.loads(synced("state", "show", "--json", "-t", "acme").stdout)
    assert after == before


def test_a_cache_row_deleted_by_hand_is_named(synced: Cli, db_url: str) -> None:
    table = cache_table("cache_acme_new_revenue_day")
    where = and_(table.c.date == DAY, table.c.dimension_name.is_(None))
    assert execute(db_url, delete(table).where(where)) == 1

    result = synced("verify", "--grain", "day")
    assert result.exit_code == 1, result.output
    (line,) = [x for x in result.stdout.splitlines() if "missing in cache" in x]
    assert line.startswith("acme::new_revenue base in ")
    assert "cache_acme_new_revenue_day 2025-09-15: missing in cache (state " in line
    assert "fulcrum-sync cache-load --grain day --tenant acme --metric new_revenue --force" in line
    engine = open_engine(db_url, migrate=False)
    with engine.connect() as conn:  # still missing: verify fixes nothing
        assert conn.execute(select(func.count()).select_from(table).where(where)).scalar() == 0
    engine.dispose()


class DroppingSource(DemoSource):
    """The demo source, but its base series never has one date (a pre-aggregation gap)."""

    def fetch_series(self, request: FetchRequest) -> list[SeriesRow]:
        rows = super().fetch_series(request)
        if request.dimension is None:
            return [r for r in rows if r.date != DAY]
        return rows


def test_a_date_the_source_no_longer_returns_is_reported(synced: Cli) -> None:
    deps = Deps(source=DroppingSource(42))
    result = synced("verify", "-g", "day", "-t", "acme", "-m", "orders", deps=deps)
    assert result.exit_code == 1, result.output
    assert "acme::orders base 2025-09-15: missing in source (state " in result.stdout


def test_sample_picks_the_same_contexts_every_run(synced: Cli) -> None:
    def picked() -> list[str]:
        out = synced("verify", "-g", "day", "--sample", "3", "--no-cache", "--json")
        assert out.exit_code == 0, out.output
        return [c["context"] for c in json.loads(out.stdout)["contexts"]]

    first = picked()
    assert len(first) == 3 and picked() == first
    bad = synced("verify", "-g", "day", "--sample", "0")
    assert bad.exit_code == 2 and "invalid --sample 0" in bad.output


def test_a_period_neither_the_source_nor_the_state_has_is_a_gap(synced: Cli, db_url: str) -> None:
    c = t.metric_time_series.c
    where = and_(c.tenant_id == 1, c.metric_id == "orders", c.grain == "day", c.date == DAY)
    assert execute(db_url, delete(t.metric_time_series).where(where)) == 1
    deps = Deps(source=DroppingSource(42))
    args = ("verify", "-g", "day", "-t", "acme", "-m", "orders", "--no-cache")
    result = synced(*args, deps=deps)
    assert result.exit_code == 1, result.output
    assert (
        "acme::orders base 2025-09-15: gap in source: the source returned no row" in result.stdout
    )
