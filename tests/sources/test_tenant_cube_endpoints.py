"""Per-tenant Cube connections: three tenants, three endpoints, one dead.

``own`` talks to its own Cube (a second tests/cube_server.py that accepts only its secret),
``dead``'s own Cube is a closed port (150 contexts), ``shared`` uses the settings' Cube. A
``sync --grain day --workers 8`` exits 3 within 30 s; ``own`` and ``shared`` succeed;
``dead``'s contexts fail naming its endpoint; no secret value appears in any output or in
any row of any table of the state database.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from cube_server import SECRET, FakeCube
from sqlalchemy import MetaData, select
from test_cli_sync_cube import CUBES, closed_port, cube_env, daily_data
from typer.testing import CliRunner

from fulcrum_sync.cli import app
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import open_engine

runner = CliRunner()
PERIOD = "2025-09-30"
OWN_SECRET = "own-tenant-signing-secret-7c1f0e2a9b"
DEAD_TOKEN = "dead-tenant-fixed-token-44d1a9e0b3"


def metric(metric_id: str) -> dict[str, Any]:
    return {
        "metric_id": metric_id,
        "measure": "orders.total_amount",
        "time_dimension": "orders.created_at",
        "grains": ["day"],
    }


def write_catalog(path: Path, own_url: str, dead_url: str) -> Path:
    tenants = [
        {
            "tenant_id": 1,
            "identifier": "own",
            "cube": {"url": own_url, "secret_env": "OWN_CUBE_SECRET"},
            "metrics": [metric(f"o{i}") for i in range(4)],
        },
        {
            "tenant_id": 2,
            "identifier": "dead",
            "cube": {"url": dead_url, "token_env": "DEAD_CUBE_TOKEN"},
            "metrics": [metric(f"d{i:03d}") for i in range(150)],
        },
        {"tenant_id": 3, "identifier": "shared", "metrics": [metric(f"s{i}") for i in range(4)]},
    ]
    path.write_text(yaml.safe_dump({"tenants": tenants}))
    return path


def dump(url: str) -> str:
    """Every row of every table of the state database, as text."""
    engine = open_engine(url)
    try:
        meta = MetaData()
        meta.reflect(engine)
        with engine.connect() as conn:
            return "\n".join(
                repr(tuple(row))
                for table in meta.sorted_tables
                for row in conn.execute(select(table))
            )
    finally:
        engine.dispose()


@pytest.mark.slow
def test_a_dead_tenant_cube_fails_only_its_contexts(sqlite_url: str, tmp_path: Path) -> None:
    own = FakeCube(daily_data, cubes=CUBES, secret=OWN_SECRET)
    shared = FakeCube(daily_data, cubes=CUBES)
    dead_url = f"http://127.0.0.1:{closed_port()}"
    with own.serve() as own_url, shared.serve() as shared_url:
        env = cube_env(
            sqlite_url,
            shared_url,
            FULCRUM_SYNC_CUBE_RETRIES="1",
            OWN_CUBE_SECRET=OWN_SECRET,
            DEAD_CUBE_TOKEN=DEAD_TOKEN,
        )
        catalog = write_catalog(tmp_path / "c.yaml", own_url, dead_url)
        loaded = runner.invoke(app, ["catalog", "load", str(catalog)], env=env)
        assert loaded.exit_code == 0, loaded.output
        started = time.monotonic()
        result = runner.invoke(
            app, ["sync", "--grain", "day", "--period", PERIOD, "--workers", "8"], env=env
        )
        seconds = time.monotonic() - started
        doctor = runner.invoke(app, ["--verbose", "doctor"], env={**env, "COLUMNS": "200"})
        doctor_json = runner.invoke(app, ["doctor", "--json"], env=env)
    assert doctor.exit_code == 3, doctor.output
    text = " ".join(doctor.stdout.split())
    for endpoint, tenants in ((own_url, "own"), (dead_url, "dead"), (shared_url, "shared")):
        assert f"Cube at {endpoint}" in text and f"tenants behind it: {tenants}" in text
    assert f"Cube at {dead_url} unreachable" in text and f"Cube at {own_url} reachable" in text
    assert result.exit_code == 3, result.output[-3000:]
    assert seconds < 30
    lines = [json.loads(x) for x in result.stdout.splitlines() if x.startswith("{")]
    finished = lines[-1]
    assert finished["event"] == "sync finished" and finished["outcome"] == "failed"
    assert dead_url in finished["halted"] and own_url not in finished["halted"]

    engine = open_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            keys = conn.execute(
                select(t.run_items.c.run_key, t.run_items.c.status, t.run_items.c.error)
            ).all()
    finally:
        engine.dispose()
    by_tenant: dict[str, list[tuple[str, str | None]]] = {}
    for run_key, status, error in keys:
        if run_key.startswith("sync:"):
            tenant = run_key.split(":")[3]
            by_tenant.setdefault(tenant, []).append((status, error))
    assert [s for s, _ in by_tenant["own"]] == ["succeeded"] * 4
    assert [s for s, _ in by_tenant["shared"]] == ["succeeded"] * 4
    dead = by_tenant.get("dead", [])
    assert all(s in ("failed", "released", "pending") for s, _ in dead)
    assert all(dead_url in (e or "") for s, e in dead if s == "failed")
    # their 4 contexts share a cube: fetched together (issue 26), one request or more each
    assert len(own.requests) >= 1 and len(shared.requests) >= 1
    assert all(r.token for r in own.requests)  # signed with its own secret (the fake checks)
    print(
        f"figures: exit {result.exit_code} in {seconds:.1f}s; own {len(own.requests)} and "
        f"shared {len(shared.requests)} requests; dead: "
        f"{sum(s == 'failed' for s, _ in dead)} failed, {len(dead)} keys"
    )

    everything = result.output + doctor.output + doctor_json.output + dump(sqlite_url)
    for secret in (OWN_SECRET, DEAD_TOKEN, SECRET):
        assert secret not in everything


def test_a_token_tenant_sends_its_token_and_a_missing_variable_fails_only_its_tenant(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from datetime import date

    import jwt
    from test_source_cube import METRIC

    from fulcrum_sync.catalog_connections import CubeConnection
    from fulcrum_sync.config import Settings
    from fulcrum_sync.domain import Grain, InputError, Window
    from fulcrum_sync.sources.base import FetchRequest
    from fulcrum_sync.sources.routing import TenantRoutedSource

    fake = FakeCube(daily_data, cubes=CUBES, secret=OWN_SECRET)
    token = jwt.encode({"tenant_id": "tok", "exp": 4_102_444_800}, OWN_SECRET, algorithm="HS256")
    monkeypatch.setenv("TOK_CUBE_TOKEN", token)
    monkeypatch.delenv("GONE_CUBE_SECRET", raising=False)
    window = Window(date(2025, 9, 1), date(2025, 9, 3))
    with fake.serve() as url:
        blocks = {
            "tok": CubeConnection(url=url, token_env="TOK_CUBE_TOKEN"),
            "gone": CubeConnection(url=url, secret_env="GONE_CUBE_SECRET"),
        }
        source = TenantRoutedSource(Settings(source="cube"), lambda: blocks)
        try:
            rows = source.fetch_series(FetchRequest(1, "tok", METRIC, Grain.DAY, window))
            with pytest.raises(InputError, match="GONE_CUBE_SECRET is not set"):
                source.fetch_series(FetchRequest(2, "gone", METRIC, Grain.DAY, window))
        finally:
            source.close()
    assert len(rows) == 3
    assert [r.token for r in fake.requests] == [token]  # sent as it is, nothing for "gone"
    assert source.endpoints() == {url: ["tok"]}


def test_a_missing_tenant_secret_is_exit_2_when_it_is_the_only_tenant(
    sqlite_url: str, tmp_path: Path
) -> None:
    own = FakeCube(daily_data, cubes=CUBES, secret=OWN_SECRET)
    shared = FakeCube(daily_data, cubes=CUBES)
    with own.serve() as own_url, shared.serve() as shared_url:
        env = cube_env(sqlite_url, shared_url, DEAD_CUBE_TOKEN=DEAD_TOKEN)  # OWN_* unset
        catalog = write_catalog(tmp_path / "c.yaml", own_url, f"http://127.0.0.1:{closed_port()}")
        assert runner.invoke(app, ["catalog", "load", str(catalog)], env=env).exit_code == 0
        sync = ["sync", "--grain", "day", "--period", PERIOD, "--no-patterns"]
        alone = runner.invoke(app, [*sync, "--tenant", "own"], env=env)
        others = runner.invoke(app, [*sync, "--tenant", "shared"], env=env)
    assert alone.exit_code == 2, alone.output
    assert "OWN_CUBE_SECRET is not set" in alone.output
    assert own.requests == []
    assert others.exit_code == 0, others.output  # the settings' Cube is not affected
