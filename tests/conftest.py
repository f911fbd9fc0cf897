"""Shared fixtures: a state database on SQLite and on the machine's PostgreSQL.

Every test that takes ``db_url`` runs twice: once on a SQLite file in ``tmp_path`` and once
on PostgreSQL, in a schema of its own inside a database created for this test session and
dropped at its end. Set ``FULCRUM_SYNC_TEST_PG`` to another server's admin URL; set it to
``skip`` to run SQLite only (CI never does).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from cli_invoke import Cli, demo_env
from hypothesis import HealthCheck, settings
from sqlalchemy import Engine
from state_db import new_state

from fulcrum_sync.store.engine import open_engine

# Hypothesis' timing checks (a per-example deadline, "input generation is slow") fail on a
# loaded machine, not on a defect: off for every property test, whatever the machine's speed.
settings.register_profile(
    "machine-independent", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("machine-independent")

PG_ADMIN = os.environ.get("FULCRUM_SYNC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session; dropped afterwards."""
    if PG_ADMIN == "skip":
        pytest.skip("PostgreSQL tests disabled by FULCRUM_SYNC_TEST_PG=skip")
    name = f"fulcrum_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:  # fail loudly: CI must test PostgreSQL
        pytest.fail(f"PostgreSQL not reachable at {PG_ADMIN}: {exc}")
    admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _pg_schema_url(pg_database: str) -> str:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_database.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return f"{pg_database}?options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A state database URL: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return _pg_schema_url(request.getfixturevalue("pg_database"))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


@pytest.fixture
def pg_url(pg_database: str) -> str:
    return _pg_schema_url(pg_database)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = open_engine(db_url, workers=4)
    yield eng
    eng.dispose()


@pytest.fixture
def cli_env(db_url: str) -> dict[str, str]:
    """Environment for the CLI: the demo source on the test database."""
    return demo_env(db_url)


@pytest.fixture
def cli(cli_env: dict[str, str]) -> Cli:
    """``fulcrum-sync`` in-process on the demo source and the test database (see cli_invoke)."""
    return Cli(env=cli_env)


@pytest.fixture
def sqlite_cli(sqlite_url: str) -> Cli:
    """``fulcrum-sync`` in-process on the demo source and a SQLite file only."""
    return Cli.demo(sqlite_url)


@pytest.fixture(scope="module")
def demo_day_synced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite state database after a real day sync of the demo catalog, once per module."""
    with new_state(tmp_path_factory, "synced", FULCRUM_SYNC_LOG_FORMAT="json") as (path, cli):
        cli.ok("sync", "-g", "day", "--no-patterns")
    return path


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Commands default to ./fulcrum_sync.db and read ./.env: keep tests out of the checkout.
    monkeypatch.chdir(tmp_path)
    for key in list(os.environ):
        if key.startswith("FULCRUM_SYNC_") and key != "FULCRUM_SYNC_TEST_PG":
            monkeypatch.delenv(key)
    # Piped output is as wide as COLUMNS says: tests that want a width set it themselves.
    for key in ("COLUMNS", "LINES"):
        monkeypatch.delenv(key, raising=False)
