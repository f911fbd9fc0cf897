"""One tenant's own Cube refusing its credentials fails only that tenant's contexts.

Real processes: ``fulcrum-sync sync`` runs as a subprocess against two tests/cube_server.py
servers on 127.0.0.1. ``locked``'s own Cube checks a secret its token was not signed with
(HTTP 403 "Invalid token"); ``twin`` uses the same endpoint and the same token variable;
``shared`` uses the settings' Cube. We check what an operator would: the exit code, the JSON
log lines, the run record, the requests counted at the refusing server, and what the next
plain run does.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
import yaml
from cli_invoke import fulcrum_argv, process_env
from cube_server import SECRET, FakeCube
from test_cli_sync_cube import CUBES, daily_data

PERIOD = "2025-09-30"
SYNC = ["sync", "--grain", "day", "--period", PERIOD, "--no-patterns", "--workers", "4"]
OWN_SECRET = "locked-tenant-cube-secret-0c4d9e77a1"
WRONG_TOKEN = jwt.encode({"tenant_id": "locked"}, "not-the-secret-its-cube-checks-at-all", "HS256")


def metric(metric_id: str, cube: str = "orders") -> dict[str, Any]:
    return {
        "metric_id": metric_id,
        "measure": f"{cube}.total_amount",
        "time_dimension": f"{cube}.created_at",
        "grains": ["day"],
    }


def write_catalog(path: Path, own_url: str, *, shared: bool = True) -> Path:
    """``locked`` (30 metrics) and ``twin`` (10) behind the refusing Cube, ``shared`` (6)."""
    block = {"url": own_url, "token_env": "LOCKED_CUBE_TOKEN"}
    tenants: list[dict[str, Any]] = [
        {"tenant_id": 1, "identifier": "locked", "cube": block,
         "metrics": [metric(f"l{i:02d}") for i in range(30)]},
        {"tenant_id": 2, "identifier": "twin", "cube": block,
         "metrics": [metric(f"t{i:02d}") for i in range(10)]},
    ]  # fmt: skip
    if shared:
        tenants.append(
            {"tenant_id": 3, "identifier": "shared", "metrics": [metric(f"s{i}") for i in range(6)]}
        )
    path.write_text(yaml.safe_dump({"tenants": tenants}))
    return path


def env_for(db_url: str, shared_url: str, token: str = WRONG_TOKEN) -> dict[str, str]:
    return process_env(db_url) | {
        "FULCRUM_SYNC_SOURCE": "cube",
        "FULCRUM_SYNC_CUBE_API_URL": shared_url,
        "FULCRUM_SYNC_CUBE_API_SECRET": SECRET,
        "FULCRUM_SYNC_CUBE_RETRIES": "2",
        "FULCRUM_SYNC_CUBE_TIMEOUT_SECONDS": "5",
        "LOCKED_CUBE_TOKEN": token,
    }


def run(env: dict[str, str], *args: str) -> tuple[int, list[dict[str, Any]], str, float]:
    started = time.monotonic()
    done = subprocess.run(fulcrum_argv(*args), env=env, capture_output=True, text=True, timeout=300)
    seconds = time.monotonic() - started
    lines = [json.loads(x) for x in done.stdout.splitlines() if x.startswith("{")]
    return done.returncode, lines, done.stderr, seconds


def runs_of(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    listed = subprocess.run(
        fulcrum_argv("runs", "--json", "--limit", "20"), env=env, capture_output=True, text=True
    )
    assert listed.returncode == 0, listed.stderr
    return {r["run_id"]: r for r in json.loads(listed.stdout)}


@dataclass(frozen=True)
class Ran:
    code: int
    lines: list[dict[str, Any]]
    err: str
    refused_requests: int  # at locked's (and twin's) refusing Cube
    shared_requests: int  # at the settings' Cube


def beside_a_refusing_cube(
    db_url: str, tmp_path: Path, shared: bool, *args: str, **env: str
) -> Ran:
    """Run ``fulcrum-sync *args --workers 4`` with locked and twin behind a Cube refusing
    their token, and (``shared``) a tenant on the settings' Cube."""
    refusing = FakeCube(daily_data, cubes=CUBES, secret=OWN_SECRET)
    settings_cube = FakeCube(daily_data, cubes=CUBES)
    with refusing.serve() as own_url, settings_cube.serve() as shared_url:
        environment = env_for(db_url, shared_url) | env
        catalog = write_catalog(tmp_path / "c.yaml", own_url, shared=shared)
        assert run(environment, "catalog", "load", str(catalog))[0] == 0
        code, lines, err, _ = run(environment, *args, "--workers", "4")
    return Ran(code, lines, err, len(refusing.requests), len(settings_cube.requests))


@pytest.mark.slow
def test_a_tenant_cube_refusing_fails_its_contexts_only_and_is_asked_once(
    sqlite_url: str, tmp_path: Path
) -> None:
    refusing = FakeCube(daily_data, cubes=CUBES, secret=OWN_SECRET)
    shared = FakeCube(daily_data, cubes=CUBES)
    with refusing.serve() as own_url, shared.serve() as shared_url:
        env = env_for(sqlite_url, shared_url)
        catalog = write_catalog(tmp_path / "c.yaml", own_url)
        assert run(env, "catalog", "load", str(catalog))[0] == 0
        code, lines, err, seconds = run(env, *SYNC)
        asked = len(refusing.requests)
        # the token is fixed: the next plain run, with the variable fixed, heals them
        good = jwt.encode({"tenant_id": "locked"}, OWN_SECRET, "HS256")
        again, again_lines, again_err, _ = run(env_for(sqlite_url, shared_url, good), *SYNC)
        runs = runs_of(env)

    assert code == 1, err  # partial: the others ran
    assert asked == 1  # one refused request; nothing more sent with that token
    failed = [e for e in lines if e["event"] == "context failed"]
    assert {e["tenant"] for e in failed} == {"locked", "twin"} and len(failed) == 40
    for e in failed:
        assert e["error"].startswith(f"Cube at {own_url}: credentials refused for tenant locked")
        assert "token_env LOCKED_CUBE_TOKEN" in e["error"] and WRONG_TOKEN not in e["error"]
    synced = [e for e in lines if e["event"] == "context synced"]
    assert {e["tenant"] for e in synced} == {"shared"} and len(synced) == 6
    refusals = [e for e in lines if e["event"] == "source refused the credentials"]
    assert len(refusals) == 1 and refusals[0]["endpoint"] == own_url, refusals
    finished = lines[-1]
    assert finished["event"] == "sync finished" and finished["outcome"] == "partial"
    assert runs[finished["run_id"]]["outcome"] == "partial"

    assert again == 0, again_err  # the next plain run does exactly the 40 refused ones
    redone = [e for e in again_lines if e["event"] == "context synced"]
    assert {e["tenant"] for e in redone} == {"locked", "twin"} and len(redone) == 40
    print(
        f"\nrefused: exit {code} in {seconds:.1f}s, {asked} request at the refusing Cube, "
        f"{len(failed)} contexts failed, {len(synced)} synced; next run exit {again}"
    )


@pytest.mark.slow
def test_the_only_endpoint_refusing_is_exit_2_and_asked_once(
    sqlite_url: str, tmp_path: Path
) -> None:
    refusing = FakeCube(daily_data, cubes=CUBES, secret=OWN_SECRET)
    with refusing.serve() as own_url:
        env = env_for(sqlite_url, "http://127.0.0.1:9")
        catalog = write_catalog(tmp_path / "c.yaml", own_url, shared=False)
        assert run(env, "catalog", "load", str(catalog))[0] == 0
        code, lines, err, seconds = run(env, *SYNC)
        runs = runs_of(env)
    assert code == 2, err
    assert len(refusing.requests) == 1
    finished = lines[-1]
    assert finished["outcome"] == "refused"
    assert runs[finished["run_id"]]["outcome"] == "refused"
    print(f"\nonly endpoint refused: exit {code} in {seconds:.1f}s, {len(refusing.requests)} req")


@pytest.mark.slow
def test_the_settings_cube_refusing_still_ends_the_run_with_exit_2(
    sqlite_url: str, tmp_path: Path
) -> None:
    own = FakeCube(daily_data, cubes=CUBES, secret=OWN_SECRET)
    default = FakeCube(daily_data, cubes=CUBES, secret="the-settings-cube-checks-another")
    with own.serve() as own_url, default.serve() as default_url:
        good = jwt.encode({"tenant_id": "locked"}, OWN_SECRET, "HS256")
        env = env_for(sqlite_url, default_url, good)
        catalog = write_catalog(tmp_path / "c.yaml", own_url)
        assert run(env, "catalog", "load", str(catalog))[0] == 0
        code, lines, err, _ = run(env, *SYNC)
    assert code == 2, err
    assert lines[-1]["outcome"] == "refused"
    assert len(default.requests) == 1  # the settings' secret is everyone's: checked once


@pytest.mark.slow
@pytest.mark.parametrize(("shared_too", "wanted"), [(True, 1), (False, 2)])
def test_a_backfill_fails_only_the_refused_tenants_keys(
    sqlite_url: str, tmp_path: Path, shared_too: bool, wanted: int
) -> None:
    backfill = ["backfill", "--grain", "day", "--start", "2025-09-01", "--end", PERIOD]
    ran = beside_a_refusing_cube(sqlite_url, tmp_path, shared_too, *backfill, "--no-patterns")
    assert ran.code == wanted, ran.err + json.dumps(ran.lines[-1])
    assert ran.refused_requests == 1
    assert (ran.shared_requests > 0) is shared_too


def test_tenants_sharing_a_refused_endpoint_and_token_send_one_request_together(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading
    from datetime import date

    from test_source_cube import METRIC

    from fulcrum_sync.catalog_connections import CubeConnection
    from fulcrum_sync.config import Settings
    from fulcrum_sync.domain import Grain, TenantRefusedError, Window
    from fulcrum_sync.sources.base import FetchRequest
    from fulcrum_sync.sources.routing import TenantRoutedSource

    monkeypatch.setenv("LOCKED_CUBE_TOKEN", WRONG_TOKEN)
    refusing = FakeCube(daily_data, cubes=CUBES, secret=OWN_SECRET)
    tenants = [f"t{i}" for i in range(8)]
    window = Window(date(2025, 9, 1), date(2025, 9, 3))
    with refusing.serve() as url:
        block = CubeConnection(url=url, token_env="LOCKED_CUBE_TOKEN")
        source = TenantRoutedSource(Settings(source="cube"), lambda: dict.fromkeys(tenants, block))
        start = threading.Barrier(len(tenants))
        outcomes: dict[str, object] = {}

        def fetch(n: int, tenant: str) -> None:
            start.wait()
            (outcomes[tenant],) = source.fetch_many(
                [FetchRequest(n, tenant, METRIC, Grain.DAY, window)]
            )

        threads = [threading.Thread(target=fetch, args=(n, t)) for n, t in enumerate(tenants)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        source.close()
    assert len(refusing.requests) == 1
    assert all(isinstance(o, TenantRefusedError) for o in outcomes.values()), outcomes
    assert all("credentials refused" in str(o) and url in str(o) for o in outcomes.values())


@pytest.mark.slow
@pytest.mark.parametrize(("shared", "exit_code"), [(False, 2), (True, 1)])
def test_a_refusing_tenant_cube_in_a_catch_up_is_exit_2_alone_and_1_beside_others(
    sqlite_url: str, tmp_path: Path, shared: bool, exit_code: int
) -> None:
    catch_up = ["sync", "--grain", "day", "--catch-up", "--no-patterns"]
    ran = beside_a_refusing_cube(
        sqlite_url, tmp_path, shared, *catch_up, FULCRUM_SYNC_TODAY="2025-10-03"
    )
    code, lines, err = ran.code, ran.lines, ran.err
    assert code == exit_code, (err, lines[-1])
    assert ran.refused_requests == 1
    assert "Traceback" not in err
    finished = lines[-1]
    assert finished["event"] == "sync finished"
    assert finished["outcome"] == ("partial" if shared else "refused"), finished
