"""Issue 15's Must-show lines: the CLI against a Cube that is down, faulty, limited or unscoped.

Each test runs ``fulcrum-sync`` in-process (CliRunner) with the Cube source the settings
build, pointed at a closed port or at tests/cube_server.py served on 127.0.0.1.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cli_invoke import Cli
from cube_server import SECRET, FakeCube, Faults, Reply, Rows, series_rows
from pydantic import SecretStr
from test_cli_sync_cube import (
    CUBES,
    MEASURE,
    TIME,
    closed_port,
    count,
    cube_env,
    daily_data,
    load_catalog,
    many_slices,
    stored,
    table_rows,
    window_days,
    write_catalog,
)

from fulcrum_sync.services.deps import Deps
from fulcrum_sync.sources import CubeSource, RetryPolicy
from fulcrum_sync.store import tables as t

ROOT = Path(__file__).resolve().parents[2]
PERIOD = "2025-07-10"
SYNC = ("sync", "--grain", "day", "--period", PERIOD, "--no-patterns")


def log_lines(stdout: str) -> list[dict[str, Any]]:
    """The JSON log lines a job wrote to stdout."""
    return [json.loads(x) for x in stdout.splitlines() if x.startswith('{"time"')]


def finished(stdout: str, event: str) -> dict[str, Any]:
    [line] = [x for x in log_lines(stdout) if x["event"] == event]
    return line


def statuses(url: str, prefix: str = "sync:") -> dict[str, str]:
    rows = table_rows(url, t.run_items)
    return {r["run_key"]: r["status"] for r in rows if r["run_key"].startswith(prefix)}


def synthetic_catalog(contexts: int, path: Path) -> Path:
    """A catalog file of ``contexts`` day contexts (benchmarks' generator), 50 per tenant."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from benchmarks.catalogs import synthetic_catalog as generate

    catalog = generate(contexts, metrics_per_tenant=50).model_dump(mode="json")
    path.write_text(yaml.safe_dump(catalog))
    return path


# --------------------------------------------------------------------------- Cube down


@pytest.mark.slow
def test_cube_down_costs_one_retry_cycle_and_releases_the_contexts_not_started(
    sqlite_url: str, tmp_path: Path
) -> None:
    cli = Cli(
        env=cube_env(
            sqlite_url,
            f"http://127.0.0.1:{closed_port()}",
            FULCRUM_SYNC_CUBE_RETRIES="1",
            FULCRUM_SYNC_CUBE_TIMEOUT_SECONDS="2",
        )
    )
    load_catalog(cli, synthetic_catalog(200, tmp_path / "catalog.yaml"))
    assert cli("discover", "--grain", "day").exit_code == 0

    started = time.monotonic()
    down = cli(*SYNC, "--workers", "8")
    wall = time.monotonic() - started
    assert down.exit_code == 3, down.output
    assert wall < 30
    [error] = [x for x in log_lines(down.stdout) if x["event"] == "source down"]
    assert error["level"] == "error" and error["since"]
    assert f"is down since {error['since']}" in error["error"]
    assert error["error"].startswith(f"Cube at {error['endpoint']} is down since")
    assert "failed after 2 attempts" in error["error"]
    summary = finished(down.stdout, "sync finished")
    assert summary["outcome"] == "failed"
    assert summary["halted"].startswith("the source is down since ")
    in_flight = summary["counts"]["contexts"]
    assert 1 <= in_flight <= 16 and summary["not_started"] == 200 - in_flight
    assert summary["source"]["requests"] <= 8 * 2  # one retry cycle per worker, at most
    keys = statuses(sqlite_url)
    assert len(keys) == 200
    assert sorted(set(keys.values())) == ["failed", "released"]
    assert sum(s == "released" for s in keys.values()) == 200 - in_flight
    assert count(sqlite_url, t.metric_time_series) == 0

    fake = FakeCube(daily_data)
    with fake.serve() as url:
        up = cli(*SYNC, "--workers", "8", env={"FULCRUM_SYNC_CUBE_API_URL": url})
    assert up.exit_code == 0, up.output
    assert finished(up.stdout, "sync finished")["counts"]["succeeded"] == 200
    assert set(statuses(sqlite_url).values()) == {"succeeded"}
    assert count(sqlite_url, t.metric_time_series) == 200 * 10


# --------------------------------------------------------------------------- a faulty Cube


@pytest.mark.slow
def test_a_faulty_cube_still_gives_every_row_and_a_429_pauses_every_worker(
    tmp_path: Path,
) -> None:
    """30 % 5xx, 10 % 429 (Retry-After: 1), 20 % "Continue wait"; short backoffs and polls."""
    metrics = tuple(f"m{i}" for i in range(8))
    # Each metric in a cube of its own: 8 contexts, 8 fetches in parallel (nothing shared);
    # each 429 costs every worker 1 s.
    catalog = write_catalog(tmp_path / "c.yaml", [], metrics, own_cubes=True)
    urls = {name: f"sqlite:///{tmp_path / name}.db" for name in ("direct", "faulty")}
    outcomes = {}
    # Seed 39's draws until 8 answers: 9 x 5xx, 1 x 429 (third), 4 x "Continue wait".
    for name, faults in (("direct", None), ("faulty", Faults(retry_after="1", seed=39))):
        fake = FakeCube(daily_data, faults=faults)
        with fake.serve() as cube, httpx.Client(timeout=5) as client:
            cli = Cli(env=cube_env(urls[name], cube))
            load_catalog(cli, catalog)
            retry = RetryPolicy(attempts=11, backoff_base=0.05, jitter=0.05)
            source = CubeSource(
                cube, SecretStr(SECRET), client=client, policy=retry, poll_interval=0.05
            )
            result = cli(*SYNC, "--workers", "8", deps=Deps(source=source))
            outcomes[name] = (result, fake)
    result, fake = outcomes["faulty"]
    assert result.exit_code == 0, result.output
    summary = finished(result.stdout, "sync finished")
    assert summary["counts"]["succeeded"] == 8
    assert stored(urls["faulty"]) == stored(urls["direct"])
    assert len(stored(urls["direct"])[0]) == 8 * 10
    # The fault proxy answered all three kinds, and nobody sent during a 429's pause.
    assert fake.served["429"] == 1 and fake.served["continue_wait"] == 4
    assert sum(fake.served.get(code, 0) for code in ("500", "502", "503")) == 9
    assert len(fake.requests) == 22
    assert fake.requests_during_pauses(grace=0.25) == 0
    source_summary = summary["source"]
    assert source_summary["throttled"] == 1 and source_summary["requests"] == 22
    assert source_summary["throttled_waits"] > 1  # other workers were held back too
    assert source_summary["retries"] >= 1 and source_summary["breaker_opened"] == 0
    [run] = table_rows(urls["faulty"], t.runs)
    assert run["summary"]["source"]["throttled_waits"] == source_summary["throttled_waits"]


# --------------------------------------------------------------------------- Cube's query limit


def test_a_query_limit_of_5000_with_the_default_page_size(sqlite_url: str, tmp_path: Path) -> None:
    fake = FakeCube(many_slices, query_limit=5000)
    with fake.serve() as cube:
        cli = Cli(env=cube_env(sqlite_url, cube))
        load_catalog(cli, write_catalog(tmp_path / "c.yaml", [("sku", "orders.sku")]))
        result = cli("sync", "--grain", "day", "--period", "2025-10-08", "--no-patterns")
    assert result.exit_code == 0, result.output
    assert count(sqlite_url, t.metric_dimensional_time_series, dimension_name="sku") == 25_000
    assert count(sqlite_url, t.metric_time_series) == 100
    named = [x for x in log_lines(result.stdout) if "FULCRUM_SYNC_CUBE_PAGE_SIZE" in x["event"]]
    assert len(named) == 1 and named[0]["level"] == "warning"
    assert "FULCRUM_SYNC_CUBE_PAGE_SIZE=5000" in named[0]["event"]
    source = finished(result.stdout, "sync finished")["source"]
    assert source["page_size"] == 5000 and source["retries"] == 0
    refused = [r for r in fake.requests if max(q["limit"] for q in r.queries) > 5000]
    assert len(refused) == 1  # once for the whole run, not per series


# --------------------------------------------------------------------------- tenant isolation

TENANTS = {"acme": 7, "initech": 8}


def by_tenant_column(query: dict[str, Any], claims: dict[str, Any]) -> Rows:
    """A Cube without queryRewrite: it ignores the JWT; only a filter on the tenant column scopes.

    Unfiltered, every tenant gets the totals of all tenants.
    """
    scoped = [
        int(f["values"][0])
        for f in query.get("filters", [])
        if f["member"] == "orders.tenant_id" and f["operator"] == "equals"
    ]
    ids = scoped or list(TENANTS.values())
    points = [
        (day, f"{sum(100 * tid + n for tid in ids)}.00", None)
        for n, day in enumerate(window_days(query))
    ]
    return series_rows(query, points)


def two_tenants(path: Path, *, filters: bool) -> Path:
    tenants = []
    for identifier, tenant_id in TENANTS.items():
        tenant: dict[str, Any] = {
            "tenant_id": tenant_id,
            "identifier": identifier,
            "metrics": [{"metric_id": "revenue", "measure": MEASURE, "time_dimension": TIME}],
        }
        if filters:
            scope = {"member": "orders.tenant_id", "operator": "equals", "values": [tenant_id]}
            tenant["filters"] = [scope]
        tenants.append(tenant)
    path.write_text(yaml.safe_dump({"tenants": tenants}))
    return path


def test_tenants_a_cube_does_not_keep_apart_are_named_and_filters_scope_them(
    db_url: str, tmp_path: Path
) -> None:
    cubes = {"orders": {**CUBES["orders"], "dimensions": [*CUBES["orders"]["dimensions"]]}}
    cubes["orders"]["dimensions"].append("orders.tenant_id")
    fake = FakeCube(by_tenant_column, cubes=cubes)
    with fake.serve() as cube:
        cli = Cli(env=cube_env(db_url, cube))
        load_catalog(cli, two_tenants(tmp_path / "c.yaml", filters=False))
        check = cli("--log-format", "rich", "discover", "--check-source")
        assert check.exit_code == 1, check.output
        [line] = [x for x in check.stdout.splitlines() if x.startswith("not isolated")]
        assert "tenants acme, initech got identical answers for revenue (day, " in line
        assert "queryRewrite" in check.stdout and "filters:" in check.stdout
        as_json = cli("discover", "--check-source", "--json")
        assert as_json.exit_code == 1
        [group] = as_json.json()["not_isolated"]
        assert (
            group["tenants"] == ["acme", "initech"] and group["rows"] == 365
        )  # the FULL window a first sync of yesterday fetches

        load_catalog(cli, two_tenants(tmp_path / "c.yaml", filters=True))
        scoped = cli("--log-format", "rich", "discover", "--check-source")
        assert scoped.exit_code == 0, scoped.output
        assert "Tenant isolation: 1 metrics shared by tenants got a different answer" in (
            scoped.stdout
        )
        synced = cli(*SYNC)
    assert synced.exit_code == 0, synced.output
    engine_rows = table_rows(db_url, t.metric_time_series)
    for identifier, tenant_id in TENANTS.items():
        values = sorted(r["value"] for r in engine_rows if r["tenant_id"] == tenant_id)
        assert values == [100.0 * tenant_id + n for n in range(10)], identifier
    loads = [r for r in fake.requests if r.path.endswith("/load")][-2:]
    assert sorted(r.query["filters"][0]["values"][0] for r in loads) == ["7", "8"]


def test_a_filter_on_a_member_cube_lacks_is_reported_by_the_source_check(
    sqlite_url: str, tmp_path: Path
) -> None:
    fake = FakeCube(by_tenant_column, cubes=CUBES)  # no orders.tenant_id
    with fake.serve() as cube:
        cli = Cli(env=cube_env(sqlite_url, cube))
        load_catalog(cli, two_tenants(tmp_path / "c.yaml", filters=True))
        check = cli("discover", "--check-source", "--json")
    assert check.exit_code == 1, check.output
    assert check.json()["broken_metrics"] == {
        "acme::revenue": ["orders.tenant_id"],
        "initech::revenue": ["orders.tenant_id"],
    }


# --------------------------------------------------------------------------- backfills


def test_a_backfill_rides_out_a_blip_and_stops_when_cube_stays_down(
    sqlite_url: str, tmp_path: Path
) -> None:
    args = ("backfill", "--grain", "day", "--start", "2025-07-01", "--end", "2025-07-05")
    fake = FakeCube(daily_data)
    quick = {"FULCRUM_SYNC_CUBE_RETRIES": "0", "FULCRUM_SYNC_CUBE_BREAKER_RESET_SECONDS": "0.5"}
    metrics = tuple(f"m{i}" for i in range(6))
    with fake.serve() as cube:
        cli = Cli(env=cube_env(sqlite_url, cube, **quick))
        load_catalog(cli, write_catalog(tmp_path / "c.yaml", [], metrics))
        # The blip: the first request's connection is dropped, then Cube answers again (an
        # event, not a timer: the machine's speed decides nothing).
        fake.script.append(Reply(raise_exc=httpx.ConnectError))
        blip = cli(*args, "--no-patterns", "--json")
    assert blip.exit_code == 0, blip.output
    assert blip.json()["done"] == 6 * 5
    events = [x["event"] for x in log_lines(blip.stderr)]
    assert "source down" not in events
    cube = f"Cube at {cube}"  # every line names the endpoint
    assert any(e.startswith(f"{cube} unreachable since ") for e in events)  # the breaker opened,
    assert f"{cube}: trying one request again (breaker half-open)" in events  # waited, tried once
    assert any(e.startswith(f"{cube} answers again") for e in events)  # and closed

    cli = Cli(env=cube_env(sqlite_url, f"http://127.0.0.1:{closed_port()}", **quick))
    later = ("backfill", "--grain", "day", "--start", "2025-07-06", "--end", "2025-07-10")
    down = cli(*later, "--no-patterns", "--json")
    assert down.exit_code == 3, down.output
    report = down.json()
    assert report["outcome"] == "failed" and report["halted"].startswith("the source is down")
    assert report["done"] == 0 and 5 <= report["failed"] <= 10  # the contexts in flight
    keys = {k: v for k, v in statuses(sqlite_url).items() if k.split(":")[2] >= "2025-07-06"}
    assert set(keys.values()) <= {"failed", "released"}
    assert sum(v == "failed" for v in keys.values()) == report["failed"]


def test_run_records_keep_the_source_summary(sqlite_url: str, tmp_path: Path) -> None:
    fake = FakeCube(daily_data)
    with fake.serve() as cube:
        cli = Cli(env=cube_env(sqlite_url, cube))
        load_catalog(cli, write_catalog(tmp_path / "c.yaml", [("region", "orders.region")]))
        assert cli(*SYNC).exit_code == 0
    [run] = table_rows(sqlite_url, t.runs)
    # base + region in one multi request (issue 26): 1 request, 2 queries
    assert run["summary"]["source"]["requests"] == 1
    assert run["summary"]["source"]["queries"] == 2
    assert run["summary"]["source"]["retry_budget"] == 1000
    assert run["summary"]["not_started"] == 0 and run["summary"]["halted"] is None
