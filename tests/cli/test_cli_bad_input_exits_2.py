"""Issue #16's holes, each as an operator meets it: bad input is exit 2 with one line and
writes nothing; misconfigured jobs never report success; flags do what they say."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_invoke import Cli, Ran
from sqlalchemy import select
from state_db import table_names

from fulcrum_sync.catalog import Catalog, MetricDef, TenantDef
from fulcrum_sync.config import Settings
from fulcrum_sync.services.contexts.catalog import catalog_problems
from fulcrum_sync.services.deps import Deps
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import open_engine

TODAY = "2025-08-05"  # last complete: day 2025-08-04, week 2025-W31 (2025-07-28), month 2025-07


@pytest.fixture
def cli(cli: Cli) -> Cli:
    return cli.but(today=TODAY)


def _one_line(result: Ran, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


def _rows(db_url: str, table: Any) -> list[Any]:
    engine = open_engine(db_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(select(table)))
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- 1, 2: periods


FUTURE_PERIODS = [
    (["sync", "--grain", "day", "--period", "2099-01-01"], "last complete day is 2025-08-04"),
    (["sync", "--grain", "day", "--period", "2025-08-05"], "last complete day is 2025-08-04"),
    (["sync", "--grain", "month", "--period", "9999-12"], "last complete month is 2025-07"),
    (["sync", "--grain", "day", "--period", "9999-12-31"], "period 9999-12-31 is not over"),
    (["sync", "--grain", "week", "--period", "9999-12-31"], "last complete week is 2025-W31"),
    (["sync", "--grain", "month", "--period", "9999-12-31"], "period 9999-12 is not over"),
    (["sync", "--grain", "week", "--period", "9999-W52"], "period 9999-W52 (9999-12-27)"),
    (["patterns", "--grain", "day", "--period", "2099-01-01"], "is not over yet"),
    (["patterns", "show", "acme::orders", "--grain", "day", "--period", "2099-01-01"], "over"),
    (
        ["backfill", "--grain", "day", "--start", "2025-07-01", "--end", "9999-12-31"],
        "--end 9999-12-31 is not over yet",
    ),
]


def test_future_periods_exit_2_naming_the_last_complete_and_write_nothing(
    cli: Cli, db_url: str
) -> None:
    for args, needle in FUTURE_PERIODS:
        line = _one_line(cli(*args))
        assert needle in line, args
    assert table_names(db_url) == set()


def test_the_last_complete_period_is_the_default_and_is_accepted(cli: Cli, db_url: str) -> None:
    result = cli("sync", "--grain", "day", "--tenant", "acme", "--metric", "orders")
    assert result.exit_code == 0, result.output
    stored = {r.date for r in _rows(db_url, t.metric_time_series)}
    assert max(stored).isoformat() == "2025-08-04"
    show = cli("patterns", "show", "acme::orders", "--grain", "day", "--json")
    assert show.exit_code == 0, show.output
    assert {r["analysis_period"] for r in json.loads(show.stdout)} == {"2025-08-04"}


# --------------------------------------------------------------------------- 3, 4: catalogs

METRIC = {"metric_id": "m", "measure": "orders.count", "time_dimension": "orders.created_at"}


def _catalog(*tenants: dict[str, Any]) -> str:
    return yaml.safe_dump({"tenants": list(tenants)})


CATALOGS: dict[str, tuple[bytes, str]] = {
    "tenant_id_2_63": (
        _catalog({"tenant_id": 2**63, "identifier": "a", "metrics": [METRIC]}).encode(),
        "tenants[0](a).tenant_id: Input should be less than or equal to 2147483647",
    ),
    "tenant_id_2_31": (
        _catalog({"tenant_id": 2**31, "identifier": "a", "metrics": [METRIC]}).encode(),
        "tenants[0](a).tenant_id",
    ),
    "latin_1": ("tenants:\n  - {tenant_id: 1, name: Caf\u00e9}\n".encode("latin-1"), "not UTF-8"),
    "utf_16": (
        _catalog({"tenant_id": 1, "identifier": "a"}).encode("utf-16"),
        "the file is UTF-16 text; save it as UTF-8",
    ),
    "deep": (("tenants: " + "[" * 5000 + "]" * 5000).encode(), "nested more than 32 levels"),
    "long_name": (
        _catalog({"tenant_id": 1, "identifier": "a", "name": "x" * 201}).encode(),
        "tenants[0](a).name: String should have at most 200 characters",
    ),
    "long_label": (
        _catalog(
            {"tenant_id": 1, "identifier": "a", "metrics": [{**METRIC, "label": "y" * 201}]}
        ).encode(),
        "tenants[0](a).metrics[0](m).label: String should have at most 200 characters",
    ),
    "nan_target": (
        b"tenants:\n  - tenant_id: 1\n    identifier: a\n    metrics:\n      - {metric_id: m, "
        b"measure: o.c, time_dimension: o.t, targets: {day: .nan}}\n",
        "tenants[0](a).metrics[0](m).targets.day: Input should be a finite number",
    ),
    "empty": (b"", "has no tenants: loading it would deactivate every metric; pass --allow-empty"),
    "two_errors": (
        b"tenants:\n  - tenant_id: 1\n    identifier: acme\n    metrics:\n"
        b"      - {metric_id: m1, time_dimension: t}\n      - {metric_id: m2, measure: x}\n",
        "2 problems:\n  tenants[0](acme).metrics[0](m1).measure: Field required\n"
        "  tenants[0](acme).metrics[1](m2).time_dimension: Field required",
    ),
    "look_alike": (
        _catalog(
            {"tenant_id": 1, "identifier": "a", "metrics": [{**METRIC, "metric_id": "b_c"}]},
            {"tenant_id": 2, "identifier": "a_b", "metrics": [{**METRIC, "metric_id": "c"}]},
        ).encode(),
        "contexts a::b_c and a_b::c would share the cache table CACHE_A_B_C_DAY",
    ),
    "case": (
        _catalog(
            {"tenant_id": 1, "identifier": "Acme", "metrics": [METRIC]},
            {"tenant_id": 2, "identifier": "ACME", "metrics": [METRIC]},
        ).encode(),
        "contexts ACME::m and Acme::m would share the cache table CACHE_ACME_M_DAY",
    ),
}


def test_bad_catalogs_exit_2_naming_the_file_and_write_nothing(
    cli: Cli, db_url: str, tmp_path: Path
) -> None:
    for name, (content, needle) in CATALOGS.items():
        path = tmp_path / f"{name}.yaml"
        path.write_bytes(content)
        result = cli("catalog", "load", str(path))
        assert result.exit_code == 2 and "Traceback" not in result.output, name
        assert str(path) in result.output and needle in result.output, name
        if "problems:" not in result.output:
            _one_line(result)  # one problem: one line
    assert table_names(db_url) == set()


def test_every_problem_is_listed_up_to_a_cap(cli: Cli, tmp_path: Path) -> None:
    tenants = [{"tenant_id": -i - 1, "identifier": f"t{i}"} for i in range(25)]
    path = tmp_path / "many.yaml"
    path.write_text(_catalog(*tenants))
    result = cli("catalog", "load", str(path))
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()  # a heading, one line per problem, the rest
    assert lines[0].endswith("many.yaml: 25 problems:")
    assert lines[1].startswith("  tenants[0](t0).tenant_id") and len(lines) == 22
    assert lines[20].startswith("  tenants[19](t19).tenant_id") and "tenants[20]" not in lines[-1]
    assert lines[-1] == "  (and 5 more)"


def test_schema_and_pattern_problems_come_in_one_pass(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "both.yaml"
    path.write_bytes(
        b"tenants:\n  - tenant_id: 1\n    identifier: acme\n    metrics:\n"
        b"      - {metric_id: m1, time_dimension: t, patterns: [forecastin]}\n"
    )
    result = cli("catalog", "validate", str(path))
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].endswith("both.yaml: 2 problems:")
    assert lines[1] == "  tenants[0](acme).metrics[0](m1).measure: Field required"
    assert lines[2].startswith("  tenant acme: unknown pattern 'forecastin'")


def test_an_empty_catalog_loads_with_allow_empty(cli: Cli, db_url: str, tmp_path: Path) -> None:
    assert cli("discover").exit_code == 0  # the demo catalog
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing yet\n")
    result = cli("catalog", "load", str(path), "--allow-empty", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["tenants"] == 0 and _rows(db_url, t.tenants) == []


def test_catalog_checks_are_linear_in_tenants() -> None:
    # The old duplicate check was quadratic: 20,000 tenants took minutes; now well under a second.
    metric = MetricDef(metric_id="m", measure="o.c", time_dimension="o.t")
    started = time.perf_counter()
    catalog = Catalog(
        tenants=tuple(
            TenantDef(tenant_id=i, identifier=f"t{i:05d}", metrics=(metric,)) for i in range(20_000)
        )
    )
    assert catalog_problems(catalog) == []
    assert time.perf_counter() - started < 10


# --------------------------------------------------------------------------- 6: configuration


@pytest.mark.parametrize("command", [["discover"], ["sync", "--grain", "day"], ["status"]])
def test_a_non_demo_source_needs_a_database_url(tmp_path: Path, command: list[str]) -> None:
    line = _one_line(Cli(env={"FULCRUM_SYNC_SOURCE": "cube"})(*command))
    assert "FULCRUM_SYNC_SOURCE=cube needs FULCRUM_SYNC_DATABASE_URL" in line
    assert "FULCRUM_SYNC_DATABASE_URL=sqlite:///fulcrum_sync.db" in line  # SQLite on purpose
    assert list(tmp_path.iterdir()) == []  # no throw-away state file in the working directory


def test_sqlite_chosen_on_purpose_works_with_a_non_demo_source(tmp_path: Path) -> None:
    env = {"FULCRUM_SYNC_SOURCE": "cube", "FULCRUM_SYNC_DATABASE_URL": "sqlite:///fulcrum_sync.db"}
    result = Cli(env=env)("runs")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "fulcrum_sync.db").exists()


def test_a_job_on_an_empty_catalog_exits_2_and_deactivates_nothing(cli: Cli, db_url: str) -> None:
    assert cli("discover").exit_code == 0
    before = _rows(db_url, t.contexts)
    with open_engine(db_url).begin() as conn:  # the catalog emptied behind the job's back
        for table in (t.metric_targets, t.metric_definitions, t.tenants):
            conn.execute(table.delete())
    env = {"FULCRUM_SYNC_SOURCE": "cube"}
    for args in (["discover"], ["patterns", "--grain", "day"], ["cache-load", "--grain", "day"]):
        line = _one_line(cli(*args, env=env))
        assert "the catalog is empty" in line and "fulcrum-sync catalog load FILE" in line
    assert _rows(db_url, t.contexts) == before
    assert _rows(db_url, t.runs) == []


FILTERS = [
    (["sync", "--tenant", "globex"], "tenant globex has the cache disabled"),
    (
        ["sync", "--tenant", "acme", "--metric", "legacy_signups"],
        "acme::legacy_signups is inactive",
    ),
    (
        ["sync", "--metric", "churned_accounts"],
        "acme::churned_accounts does not enable grain day (only week, month)",
    ),
    (["patterns", "--tenant", "globex"], "tenant globex has the cache disabled"),
    (["cache-load", "--tenant", "globex"], "tenant globex has the cache disabled"),
    (
        ["backfill", "--tenant", "globex", "--start", "2025-07-01", "--end", "2025-07-02"],
        "tenant globex has the cache disabled",
    ),
    (["sync", "--tenant", "nope"], "unknown tenant 'nope'"),
]


def test_a_filter_that_selects_nothing_says_why(cli: Cli, db_url: str) -> None:
    assert cli("discover").exit_code == 0
    before = _rows(db_url, t.contexts)
    for args, reason in FILTERS:
        line = _one_line(cli(*args[:1], "--grain", "day", *args[1:]))
        assert reason in line, args
    assert _rows(db_url, t.runs) == [] and _rows(db_url, t.contexts) == before


def test_a_filter_on_a_fresh_database_is_checked_before_discovery(cli: Cli, db_url: str) -> None:
    line = _one_line(cli("sync", "--grain", "day", "--tenant", "globex"))
    assert "cache disabled" in line
    assert _rows(db_url, t.contexts) == [] and _rows(db_url, t.tenants) == []


def test_a_context_not_discovered_yet_is_named(cli: Cli, db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "one.yaml"
    path.write_text(_catalog({"tenant_id": 5, "identifier": "solo", "metrics": [METRIC]}))
    assert cli("catalog", "load", str(path)).exit_code == 0
    line = _one_line(cli("cache-load", "--grain", "day", "--tenant", "solo"))
    assert "solo::m is not discovered yet (run `fulcrum-sync discover`)" in line


# --------------------------------------------------------------------------- 7: flags


def test_force_full_implies_force(cli: Cli) -> None:
    args = ["sync", "--grain", "day", "--period", "2025-07-13", "--tenant", "acme"]
    args += ["--metric", "orders", "--no-patterns", "--json"]
    assert cli(*args).exit_code == 0
    again = json.loads(cli(*args).stdout)
    assert [c["status"] for c in again["contexts"]] == ["skipped"]
    forced = cli(*args, "--force-full")
    assert forced.exit_code == 0, forced.output
    (context,) = json.loads(forced.stdout)["contexts"]
    assert context["status"] == "succeeded"
    assert {s["sync_type"] for s in context["series"]} == {"FULL"}


def test_resume_needs_no_grain_and_refuses_a_contradicting_one(cli: Cli) -> None:
    start = ["backfill", "--grain", "week", "--start", "2025-W27", "--end", "2025-W28"]
    first = cli(*start, "--tenant", "acme", "--metric", "orders", "--json")
    assert first.exit_code == 0, first.output
    backfill_id = json.loads(first.stdout)["backfill_id"]
    resumed = cli("backfill", "--resume", backfill_id[:8], "--json")
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout)["backfill_id"] == backfill_id
    same = cli("backfill", "--resume", backfill_id, "--grain", "weekly", "--json")
    assert same.exit_code == 0, same.output
    for extra, shown in (
        (["--grain", "day"], "--grain day (recorded: --grain week)"),
        (["--tenant", "initech"], "--tenant initech (recorded: --tenant acme)"),
        (["--end", "2025-W29"], "--end 2025-W29 (2025-07-14) (recorded: --end 2025-W28"),
        (["--no-patterns"], "--no-patterns (recorded: --patterns)"),
    ):
        line = _one_line(cli("backfill", "--resume", backfill_id, *extra))
        assert shown in line and "contradicts backfill" in line and "leave it out" in line


def test_backfill_without_resume_still_needs_a_grain(cli: Cli) -> None:
    line = _one_line(cli("backfill", "--start", "2025-07-01", "--end", "2025-07-02"))
    assert "missing --grain" in line


# --------------------------------------------------------------------------- any other error


class NotAnEngine:
    """Stands where an engine should: any use of it is an unexpected (internal) error."""


def test_an_internal_error_is_one_line_and_exit_1_and_verbose_shows_the_traceback() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    deps = Deps(settings=settings, engine=NotAnEngine())  # type: ignore[arg-type]
    line = _one_line(Cli()("runs", deps=deps), code=1)
    assert line.startswith("Error: internal error: AttributeError")
    verbose = Cli()(
        "--verbose",
        "runs",
        deps=Deps(settings=settings, engine=NotAnEngine()),  # type: ignore[arg-type]
    )
    assert verbose.exit_code == 1 and "Traceback" in verbose.output
