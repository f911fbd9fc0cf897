"""`fulcrum-sync patterns` and the pattern chain inside `sync`."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from cli_invoke import Cli
from sqlalchemy import func, select

from fulcrum_sync.catalog import active_contexts, demo_catalog
from fulcrum_sync.domain import Grain
from fulcrum_sync.patterns.registry import REGISTRY, list_patterns
from fulcrum_sync.services.deps import Deps
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import open_engine

PERIOD = "2025-09-30"


def expected_pattern_rows() -> int:
    """Enabled, supported patterns of the demo's day contexts, once per dimension if needed."""
    total = 0
    for ctx in active_contexts(demo_catalog(), Grain.DAY):
        for name in ctx.metric.patterns:
            spec = REGISTRY[name]
            if spec.supports(Grain.DAY):
                total += len(ctx.metric.dimensions) if spec.needs_dimension else 1
    return total


def count(url: str, table: Any, *where: Any) -> int:
    engine = open_engine(url)
    with engine.connect() as conn:
        value = conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()
    engine.dispose()
    return value


def test_sync_stores_every_enabled_pattern_and_show_prints_them(cli: Cli, db_url: str) -> None:
    result = cli("sync", "--grain", "day", "--period", PERIOD, "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert all(c["patterns"] for c in payload["contexts"])
    assert count(db_url, t.pattern_results) == expected_pattern_rows()
    assert count(db_url, t.pattern_results, t.pattern_results.c.status == "failed") == 0

    shown = cli("patterns", "show", "acme::new_revenue", "--grain", "day")
    assert shown.exit_code == 0, shown.output
    for name in (
        "performance_status",
        "historical_performance",
        "forecasting",
        "data_quality",
        "dimension_analysis",
    ):
        assert name in shown.stdout
    as_json = json.loads(
        cli("patterns", "show", "acme::new_revenue", "--grain", "day", "--json").stdout
    )
    assert {r["analysis_period"] for r in as_json} == {PERIOD}


def test_patterns_twice_leaves_one_row_per_key_with_the_second_timestamp(
    cli: Cli, db_url: str
) -> None:
    args = ["patterns", "--grain", "day", "--period", PERIOD, "--tenant", "acme", "--json"]
    assert cli("sync", "--grain", "day", "--period", PERIOD, "--no-patterns").exit_code == 0
    first = cli(*args)
    assert first.exit_code == 0, first.output
    rows_after_first = count(db_url, t.pattern_results)
    engine = open_engine(db_url)
    with engine.connect() as conn:
        before = {
            (r.metric_id, r.pattern, r.dimension): r.run_at
            for r in conn.execute(select(t.pattern_results))
        }
    skipped = json.loads(cli(*args).stdout)
    patterns = [p for c in skipped["contexts"] for p in c["patterns"]]
    assert {(p["status"], p["skip_reason"]) for p in patterns} == {("skipped", "already done")}
    second = cli(*args, "--force")
    assert second.exit_code == 0
    second_run = json.loads(second.stdout)["run_id"]
    with engine.connect() as conn:
        rows = conn.execute(select(t.pattern_results)).all()
    engine.dispose()
    assert len(rows) == rows_after_first
    assert {r.run_id for r in rows} == {second_run}
    assert all(r.run_at > before[(r.metric_id, r.pattern, r.dimension)] for r in rows)


def test_a_raising_pattern_is_recorded_failed_and_isolated(cli: Cli, db_url: str) -> None:
    def explode(data: Any, **settings: Any) -> Any:
        raise RuntimeError("injected failure")

    broken = dataclasses.replace(REGISTRY["data_quality"], func=explode)
    deps = Deps(patterns={"data_quality": broken})
    result = cli("sync", "--grain", "day", "--period", PERIOD, "--json", deps=deps)
    assert result.exit_code == 1, result.output
    payload = json.loads(result.stdout)
    by_status = {
        (c["context"], p["pattern"]): p["status"]
        for c in payload["contexts"]
        for p in c["patterns"]
    }
    assert by_status[("acme::new_revenue", "data_quality")] == "failed"
    assert by_status[("acme::new_revenue", "forecasting")] == "succeeded"
    assert all(c["status"] == "succeeded" for c in payload["contexts"])  # the sync itself
    r = t.pattern_results.c
    failed = count(db_url, t.pattern_results, r.status == "failed")
    assert failed == count(db_url, t.pattern_results, r.pattern == "data_quality") > 0
    engine = open_engine(db_url)
    with engine.connect() as conn:
        error = conn.execute(select(r.error).where(r.pattern == "data_quality")).scalars().first()
    engine.dispose()
    assert error["type"] == "RuntimeError" and "injected failure" in error["message"]
    status = json.loads(cli("status", "--json").stdout)
    assert {f["pattern"] for f in status["failing_patterns"]} == {"data_quality"}


def test_patterns_list(cli: Cli) -> None:
    result = cli("patterns", "list", "--json")
    assert result.exit_code == 0
    listed = json.loads(result.stdout)
    assert [p["name"] for p in listed] == [s.name for s in list_patterns()]
    assert all(p["version"] and p["grains"] and p["needs"] for p in listed)


def test_bad_input(cli: Cli) -> None:
    nosuch = cli("patterns", "--grain", "day", "--pattern", "nosuch")
    assert nosuch.exit_code == 2
    assert "'nosuch'" in nosuch.output and "forecasting" in nosuch.output
    nobody = cli("patterns", "show", "nobody::x", "--grain", "day")
    assert nobody.exit_code == 2 and "'nobody'" in nobody.output
    assert len(nobody.output.strip().splitlines()) == 1
    for bad in ("acme::", "a::b::c::d"):
        result = cli("patterns", "show", bad, "--grain", "day")
        assert result.exit_code == 2 and "invalid context" in result.output
