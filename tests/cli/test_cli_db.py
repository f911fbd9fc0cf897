"""``fulcrum-sync db upgrade``, first use of an empty database, and the entry points."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from cli_invoke import Cli
from sqlalchemy import func, select
from state_db import table_names, unmigrated

from fulcrum_sync.config import mask_url
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import HEAD_REVISION

UNREACHABLE = "postgresql+psycopg://u:s3cret@127.0.0.1:1/x"
# No wait for a server that never comes.
UNREACHABLE_ENV = {
    "FULCRUM_SYNC_DATABASE_URL": UNREACHABLE,
    "FULCRUM_SYNC_DATABASE_RETRY_SECONDS": "0",
}


def _tenants(db_url: str) -> int:
    with unmigrated(db_url) as engine, engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t.tenants)).scalar_one())


def test_db_upgrade_creates_the_schema_and_twice_is_a_no_op(cli: Cli, db_url: str) -> None:
    first = cli("db", "upgrade")
    assert first.exit_code == 0, first.output
    assert f"schema empty -> {HEAD_REVISION}" in first.stdout
    assert mask_url(db_url) in first.stdout
    assert table_names(db_url) == set(t.metadata.tables) | {"alembic_version"}

    assert cli("discover").exit_code == 0
    tenants = _tenants(db_url)
    assert tenants > 0

    second = cli("db", "upgrade")
    assert second.exit_code == 0, second.output
    assert f"schema already at {HEAD_REVISION}; nothing to do" in second.stdout
    assert _tenants(db_url) == tenants
    assert "0 added, 0 deactivated" in cli("discover").stdout


def test_commands_set_up_an_empty_sqlite_file(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    result = cli("discover", env={"FULCRUM_SYNC_DATABASE_URL": f"sqlite:///{path}"})
    assert result.exit_code == 0, result.output
    assert "loaded the demo catalog" in result.stdout
    assert "alembic_version" in table_names(f"sqlite:///{path}")


def test_default_database_is_a_file_in_the_working_directory(cli: Cli) -> None:
    result = cli("db", "upgrade", env={"FULCRUM_SYNC_DATABASE_URL": None})
    assert result.exit_code == 0, result.output
    assert "sqlite:///fulcrum_sync.db" in result.stdout
    assert Path("fulcrum_sync.db").exists()  # conftest runs each test in its own tmp_path


def test_unreachable_database_exits_3_with_a_masked_url(cli: Cli) -> None:
    result = cli("db", "upgrade", env=UNREACHABLE_ENV)
    assert result.exit_code == 3
    assert "s3cret" not in result.output
    assert "PostgreSQL at 127.0.0.1:1/x" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unusable_database_url_exits_2(cli: Cli) -> None:
    result = cli("db", "upgrade", env={"FULCRUM_SYNC_DATABASE_URL": "nosuchdb://u:s3cret@h/x"})
    assert result.exit_code == 2
    assert "s3cret" not in result.output
    assert result.stderr.startswith("Error: unusable database URL nosuchdb://u:***@h/x")


def test_foundation_commands_have_help_with_an_example() -> None:
    for args in (["discover"], ["catalog", "load"], ["db", "upgrade"]):
        result = Cli()(*args, "--help")
        assert result.exit_code == 0, args
        assert "Example: " in result.stdout, args
    root = Cli()("--help")
    assert "--verbose" in root.stdout


def test_python_dash_m_works(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FULCRUM_SYNC_")}
    result = subprocess.run(
        [sys.executable, "-m", "fulcrum_sync", "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for command in ("discover", "catalog", "db"):
        assert command in result.stdout
    assert not (tmp_path / "fulcrum_sync.db").exists()  # --help touches no database


def test_db_current_reports_the_revision_and_changes_nothing(cli: Cli, db_url: str) -> None:
    empty = cli("db", "current")
    assert empty.exit_code == 0, empty.output
    assert f"no schema yet (newest {HEAD_REVISION}); run `fulcrum-sync db upgrade`" in empty.stdout
    assert table_names(db_url) == set()  # not migrated
    assert cli("db", "upgrade").exit_code == 0
    current = cli("db", "current", "--json")
    assert current.exit_code == 0, current.output
    assert json.loads(current.stdout) == {
        "database": mask_url(db_url),
        "revision": HEAD_REVISION,
        "head": HEAD_REVISION,
        "current": True,
    }


def test_db_current_on_an_unreachable_database_is_exit_3(cli: Cli) -> None:
    result = cli("db", "current", env=UNREACHABLE_ENV)
    assert result.exit_code == 3 and "PostgreSQL at 127.0.0.1:1/x" in result.stderr
    assert "s3cret" not in result.output
