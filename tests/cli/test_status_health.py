"""``status`` is the alert signal (issue 23, items 10, 11, 13): it never creates a database,
leads with one headline per cause, and its exit code says healthy/healing (0), needs a
person (1) or nothing to watch (2)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cli_invoke import Cli, Ran
from sqlalchemy import delete, func, insert, select

from fulcrum_sync.cli._common import HEALTH_CODES
from fulcrum_sync.domain import Health
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import open_engine

TODAY = "2025-09-10"
CLI = Cli(today=TODAY)  # a call's env may pin another day
DEMO_CATALOG = Path(__file__).parents[2] / "fulcrum_sync" / "data" / "demo_catalog.yaml"


def status_json(env: dict[str, str], *args: str) -> tuple[int, dict[str, Any]]:
    result = CLI("status", "--json", *args, env=env)
    return result.exit_code, result.json()


def test_every_health_has_an_exit_code() -> None:
    assert set(HEALTH_CODES) == set(Health)
    assert HEALTH_CODES[Health.HEALTHY] == HEALTH_CODES[Health.HEALING] == 0
    assert HEALTH_CODES[Health.NEEDS_ATTENTION] == 1
    assert HEALTH_CODES[Health.NOTHING_TO_WATCH] == 2


@pytest.mark.parametrize("json_out", [False, True])
def test_status_on_a_missing_sqlite_file_exits_2_and_creates_nothing(
    tmp_path: Path, json_out: bool
) -> None:
    path = tmp_path / "elsewhere" / "fulcrum_sync.db"
    path.parent.mkdir()
    env = {"FULCRUM_SYNC_DATABASE_URL": f"sqlite:///{path}"}
    result = CLI("status", *(["--json"] if json_out else []), env=env)
    assert result.exit_code == 2, result.output
    assert not path.exists()
    assert list(path.parent.iterdir()) == []
    if json_out:
        doc = json.loads(result.stdout)
        assert doc["health"] == "nothing_to_watch" and str(path) in doc["reason"]
    else:
        assert f"no state database at {path}" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_status_in_another_directory_creates_no_default_database(tmp_path: Path) -> None:
    result = CLI("status")  # the default ./fulcrum_sync.db (cwd is tmp_path)
    assert result.exit_code == 2, result.output
    assert not (tmp_path / "fulcrum_sync.db").exists()


@pytest.fixture
def fresh_pg() -> Iterator[str]:
    """A brand-new, empty PostgreSQL database (no schema at all)."""
    name = f"fulcrum_status_{uuid.uuid4().hex[:10]}"
    admin = psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_a_new_postgresql_database_is_nothing_to_watch_until_a_run_is_recorded(
    fresh_pg: str,
) -> None:
    env = {"FULCRUM_SYNC_DATABASE_URL": fresh_pg, "FULCRUM_SYNC_SOURCE": "demo"}
    empty = CLI("status", env=env)
    assert empty.exit_code == 2, empty.output
    assert "has no fulcrum-sync schema" in empty.stderr
    assert "PostgreSQL at 127.0.0.1:5432/" in empty.stderr
    with psycopg.connect(fresh_pg.replace("+psycopg", "")) as conn:  # status created nothing
        tables = conn.execute("select count(*) from pg_tables where schemaname = 'public'")
        assert tables.fetchone() == (0,)
    assert CLI("db", "upgrade", env=env).exit_code == 0
    code, doc = status_json(env)
    assert (code, doc["health"]) == (2, "nothing_to_watch")
    assert "no catalog loaded" in doc["reason"]
    assert CLI("catalog", "load", str(DEMO_CATALOG), env=env).exit_code == 0
    code, doc = status_json(env)
    assert (code, doc["health"]) == (2, "nothing_to_watch")
    assert "no run recorded" in doc["reason"]
    synced = CLI("sync", "--grain", "day", "--log-format", "rich", env=env)
    assert synced.exit_code == 0, synced.output
    code, doc = status_json(env, "--grain", "day")
    assert (code, doc["health"]) == (0, "healthy"), doc["headlines"]


def test_contexts_never_synced_that_the_schedule_covers_are_healing_exit_0(
    tmp_path: Path,
) -> None:
    env = {"FULCRUM_SYNC_DATABASE_URL": f"sqlite:///{tmp_path / 's.db'}"}
    only = CLI("sync", "--grain", "day", "--tenant", "acme", "--log-format", "rich", env=env)
    assert only.exit_code == 0, only.output
    CLI("discover", env=env)  # every grain's contexts exist, most never synced
    code, doc = status_json(env)
    assert (code, doc["health"]) == (0, "healing"), doc["headlines"]
    causes = {(h["cause"], h["grain"]) for h in doc["headlines"]}
    assert ("never_synced", "day") in causes and ("never_synced", "week") in causes
    assert not any(h["needs_person"] for h in doc["headlines"])
    text = CLI("status", env=env)
    assert text.exit_code == 0
    assert "healing (exit 0): the next scheduled run fixes all of it" in text.stdout
    assert "day contexts never synced" in text.stdout


def _sqlite_env(tmp_path: Path) -> dict[str, str]:
    return {"FULCRUM_SYNC_DATABASE_URL": f"sqlite:///{tmp_path / 's.db'}"}


def test_a_missing_pattern_result_is_a_hole_with_its_fix(tmp_path: Path) -> None:
    env = _sqlite_env(tmp_path)
    args = ("sync", "--grain", "day", "--log-format", "rich")
    assert CLI(*args, env=env).exit_code == 0
    code, doc = status_json(env, "--grain", "day")
    assert code == 0 and doc["health"] == "healthy", doc["headlines"]
    engine = open_engine(env["FULCRUM_SYNC_DATABASE_URL"], migrate=False)
    p = t.pattern_results.c
    with engine.begin() as conn:
        gone = conn.execute(
            delete(t.pattern_results).where(p.metric_id == "orders", p.pattern == "data_quality")
        ).rowcount
    assert gone == 1
    code, doc = status_json(env, "--grain", "day")
    assert (code, doc["health"]) == (1, "needs_attention")
    [hole] = [h for h in doc["headlines"] if h["cause"] == "holes"]
    assert hole["needs_person"] and hole["contexts"] == ["acme::orders"]
    fix = hole["command"]
    assert fix == (
        "fulcrum-sync patterns run --grain day --period 2025-09-09 --tenant acme --metric orders "
        "--force"
    )
    redo = CLI(*fix.split()[1:], "--log-format", "rich", env=env)
    assert redo.exit_code == 0, redo.output
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.pattern_results)).scalar() > 0
    code, doc = status_json(env, "--grain", "day")
    assert (code, doc["health"]) == (0, "healthy"), doc["headlines"]
    engine.dispose()


def test_an_abandoned_run_needs_a_person_until_the_same_job_succeeds(tmp_path: Path) -> None:
    env = _sqlite_env(tmp_path)
    args = ("sync", "--grain", "day", "--log-format", "rich")
    assert CLI(*args, env=env).exit_code == 0
    engine = open_engine(env["FULCRUM_SYNC_DATABASE_URL"], migrate=False)
    run_id = "abcdef12-0000-4000-8000-000000000000"
    with engine.begin() as conn:
        conn.execute(
            insert(t.runs).values(
                run_id=run_id,
                command="sync",
                arguments={"grain": "day"},
                host="pod-7",
                pid=4242,
                started_at=datetime.now(UTC),
                finished_at=datetime.now(UTC),
                outcome="abandoned",
                summary={},
            )
        )
    code, doc = status_json(env, "--grain", "day")
    assert (code, doc["health"]) == (1, "needs_attention")
    [dead] = [h for h in doc["headlines"] if h["cause"] == "abandoned"]
    assert "run abcdef12 (sync day) abandoned" in dead["text"] and "pod-7" in dead["text"]
    assert dead["command"] == "fulcrum-sync runs show abcdef12"
    assert doc["abandoned_runs"][0]["run_id"] == run_id
    assert CLI(*args, "--force", env=env).exit_code == 0  # the same job succeeds later
    code, doc = status_json(env, "--grain", "day")
    assert (code, doc["health"]) == (0, "healthy"), doc["headlines"]
    engine.dispose()


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_night_of_cube_down_is_one_headline_naming_the_endpoint(tmp_path: Path) -> None:
    port = _closed_port()
    env = {
        **_sqlite_env(tmp_path),
        "FULCRUM_SYNC_SOURCE": "cube",
        "FULCRUM_SYNC_CUBE_API_URL": f"http://fs:CubePass9@127.0.0.1:{port}/cubejs-api",
        "FULCRUM_SYNC_CUBE_API_SECRET": "s" * 32,
        "FULCRUM_SYNC_CUBE_RETRIES": "0",
        "FULCRUM_SYNC_CUBE_TIMEOUT_SECONDS": "2",
        "COLUMNS": "120",
    }
    assert CLI("catalog", "load", str(DEMO_CATALOG), env=env).exit_code == 0
    night = CLI("sync", "--grain", "day", "--log-format", "json", env=env)
    assert night.exit_code == 3, night.output
    text = CLI("status", env=env)
    lines = text.stdout.splitlines()
    assert text.exit_code == 0, text.output  # healing: the next scheduled run retries it
    assert len(lines) <= 40 and max(len(line) for line in lines) <= 120, text.stdout
    endpoint = f"Cube at http://127.0.0.1:{port}/cubejs-api unreachable since"
    [headline] = [line for line in lines if endpoint in line]
    assert "9 day contexts behind" in headline
    assert "now: fulcrum-sync sync --grain day --catch-up" in text.stdout
    assert "CubePass9" not in text.stdout
    again = CLI("sync", "--grain", "day", "--log-format", "json", env=env)
    assert again.exit_code == 3
    code, doc = status_json(env)
    assert (code, doc["health"]) == (1, "needs_attention")
    [outage] = [h for h in doc["headlines"] if h["cause"] == "outage"]
    assert outage["needs_person"] and outage["endpoint"].startswith("Cube at http://127.0.0.1:")
    assert "failed 2 syncs in a row" in outage["note"]
    assert "CubePass9" not in json.dumps(doc)


def test_a_pattern_failing_twice_needs_a_person(tmp_path: Path) -> None:
    import dataclasses

    from fulcrum_sync.patterns.registry import REGISTRY
    from fulcrum_sync.services.deps import Deps

    def explode(data: Any, **settings: Any) -> Any:
        raise RuntimeError("injected failure")

    broken = dataclasses.replace(REGISTRY["data_quality"], func=explode)
    env = {**_sqlite_env(tmp_path), "FULCRUM_SYNC_TODAY": TODAY}
    args = ["sync", "--grain", "day", "--tenant", "acme", "--log-format", "rich"]

    def sync() -> Ran:
        return CLI(*args, env=env, deps=Deps(patterns={"data_quality": broken}))

    assert sync().exit_code == 1
    code, doc = status_json(env, "--grain", "day")
    [patterns] = [h for h in doc["headlines"] if h["cause"] == "patterns"]
    assert not patterns["needs_person"]  # once: the next scheduled run retries it
    assert sync().exit_code == 1  # the next run retries the failed keys, and they fail again
    code, doc = status_json(env, "--grain", "day")
    [patterns] = [h for h in doc["headlines"] if h["cause"] == "patterns"]
    assert patterns["needs_person"] and code == 1
    assert "failed twice or more" in patterns["note"]


def test_a_schema_this_version_does_not_read_is_named_with_its_fix(tmp_path: Path) -> None:
    from sqlalchemy import text

    env = _sqlite_env(tmp_path)
    assert CLI("sync", "--grain", "day", "--log-format", "rich", env=env).exit_code == 0
    engine = open_engine(env["FULCRUM_SYNC_DATABASE_URL"], migrate=False)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    engine.dispose()
    code, doc = status_json(env)
    assert (code, doc["health"]) == (2, "nothing_to_watch")
    assert "schema at revision 0001" in doc["reason"] and "db upgrade" in doc["reason"]


def test_refused_credentials_need_a_person_at_once(tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1]))
    from cube_server import FakeCube  # type: ignore[import-not-found]

    fake = FakeCube(secret="the secret Cube really has, not ours")  # every token: HTTP 403
    with fake.serve() as url:
        env = {
            **_sqlite_env(tmp_path),
            "FULCRUM_SYNC_SOURCE": "cube",
            "FULCRUM_SYNC_CUBE_API_URL": url,
            "FULCRUM_SYNC_CUBE_API_SECRET": "s" * 32,
            "FULCRUM_SYNC_CUBE_RETRIES": "0",
        }
        assert CLI("catalog", "load", str(DEMO_CATALOG), env=env).exit_code == 0
        refused = CLI("sync", "--grain", "day", "--log-format", "json", env=env)
        assert refused.exit_code == 2, refused.output
    code, doc = status_json(env, "--grain", "day")
    assert (code, doc["health"]) == (1, "needs_attention"), doc["headlines"]
    [refused_headline] = doc["headlines"]  # the contexts it never started are its too
    assert refused_headline["cause"] == "refused" and refused_headline["needs_person"]
    assert "refused the credentials" in refused_headline["text"]
    assert "9 day contexts not synced" in refused_headline["text"]
    assert refused_headline["command"] == "fulcrum-sync doctor"
    assert refused_headline["text"].startswith("Cube at http://127.0.0.1:")
