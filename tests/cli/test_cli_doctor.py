"""``doctor``: the demo default is all ✓ (exit 0); a refused Cube token is exit 2; an
unreachable database or Cube is exit 3; each problem names its fix; secrets never show."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import fakesnow
import pytest
from cli_invoke import Cli, Ran
from cube_server import SECRET, FakeCube

from fulcrum_sync.services.deps import Deps

WRONG_SECRET = "not-the-cube-secret-0123456789abcdef"
CUBES = {"orders": {"measures": ["orders.total_amount"], "dimensions": ["orders.created_at"]}}
CATALOG = """\
tenants:
  - {tenant_id: 1, identifier: acme, metrics: [{metric_id: revenue, measure: orders.total_amount,
     time_dimension: orders.created_at}]}
  - {tenant_id: 2, identifier: initech, metrics: [{metric_id: revenue,
     measure: orders.total_amount, time_dimension: orders.created_at}]}
"""


def doctor(env: dict[str, str], *args: str) -> Ran:
    """``fulcrum-sync [args] doctor`` with exactly these settings."""
    return Cli(env=env)(*args, "doctor")


def marks(result: Ran) -> dict[str, str]:
    """``{check name: its mark}`` of every check line."""
    out = {}
    for line in result.stdout.splitlines():
        if line[:1] in "✓!✗-" and len(line) > 2:
            mark, name = line[0], line[2:].split("  ")[0].strip()
            out[name] = mark
    return out


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def cube_env(sqlite_url: str, tmp_path: Path) -> Iterator[tuple[FakeCube, dict[str, str]]]:
    """A fake Cube served on 127.0.0.1 and a state database holding a two-tenant catalog."""
    fake = FakeCube(cubes=CUBES)
    with fake.serve() as url:
        env = {
            "FULCRUM_SYNC_DATABASE_URL": sqlite_url,
            "FULCRUM_SYNC_SOURCE": "cube",
            "FULCRUM_SYNC_CUBE_API_URL": url,
            "FULCRUM_SYNC_CUBE_API_SECRET": SECRET,
            "FULCRUM_SYNC_CUBE_RETRIES": "0",
        }
        (tmp_path / "catalog.yaml").write_text(CATALOG)
        loaded = Cli(env=env)("catalog", "load", str(tmp_path / "catalog.yaml"))
        assert loaded.exit_code == 0, loaded.output
        fake.requests.clear()
        yield fake, env


def test_demo_default_after_a_sync_is_all_green(cli: Cli, cli_env: dict[str, str]) -> None:
    synced = cli("sync", "-g", "day", "-t", "acme", "--no-patterns")
    assert synced.exit_code == 0, synced.output
    result = doctor(cli_env)
    assert result.exit_code == 0, result.output
    assert marks(result) == {
        name: "✓"
        for name in ("settings", "database", "schema", "catalog", "source", "cache", "clock")
    }
    assert "All checks passed." in result.stdout
    if "postgresql" in cli_env["FULCRUM_SYNC_DATABASE_URL"]:
        assert "the database clock differs by" in result.stdout


def test_a_fresh_directory_only_warns_and_creates_no_schema(tmp_path: Path) -> None:
    result = doctor({})
    assert result.exit_code == 0, result.output
    assert marks(result)["schema"] == "!" and "fulcrum-sync db upgrade" in result.stdout
    assert marks(result)["catalog"] == "-"
    second = doctor({})
    assert marks(second)["schema"] == "!"  # doctor itself migrated nothing


def test_database_down_is_exit_3_with_the_fix() -> None:
    url = f"postgresql+psycopg://fulcrum:pg-s3cret@127.0.0.1:{closed_port()}/fulcrum"
    result = doctor({"FULCRUM_SYNC_DATABASE_URL": url})
    assert result.exit_code == 3, result.output
    checks = marks(result)
    assert checks["database"] == "✗" and checks["schema"] == "-" and checks["catalog"] == "-"
    assert "fix: start the database server, or correct FULCRUM_SYNC_DATABASE_URL" in " ".join(
        result.stdout.split()
    )
    assert "pg-s3cret" not in result.output and "***" in result.stdout


def test_cube_accepting_each_tenant_token_is_exit_0_with_one_meta_per_tenant(
    cube_env: tuple[FakeCube, dict[str, str]],
) -> None:
    fake, env = cube_env
    result = doctor(env)
    assert result.exit_code == 0, result.output
    assert marks(result)["cube acme"] == "✓" and marks(result)["cube initech"] == "✓"
    assert [(r.method, r.path) for r in fake.requests] == [("GET", "/cubejs-api/v1/meta")] * 2
    assert "CUBE_API_SECRET=set" in result.stdout and SECRET not in result.output


def test_wrong_cube_secret_is_exit_2_naming_the_settings(
    cube_env: tuple[FakeCube, dict[str, str]],
) -> None:
    fake, env = cube_env
    result = doctor({**env, "FULCRUM_SYNC_CUBE_API_SECRET": WRONG_SECRET}, "--verbose")
    assert result.exit_code == 2, result.output
    assert marks(result)["cube acme"] == "✗" and marks(result)["cube initech"] == "✗"
    text = " ".join(result.stdout.split())
    assert "HTTP 403" in text and "Invalid token" in text
    assert "fix: check FULCRUM_SYNC_CUBE_API_SECRET" in text
    assert "FULCRUM_SYNC_CUBE_TENANT_CLAIM (now 'tenant_id')" in text
    assert "FULCRUM_SYNC_CUBE_API_SECRET=set" in text  # --verbose lists settings, not secrets
    assert WRONG_SECRET not in result.output and len(fake.requests) == 2  # never retried


def test_cube_unreachable_is_exit_3_and_asks_once(
    cube_env: tuple[FakeCube, dict[str, str]],
) -> None:
    _, env = cube_env
    down = {**env, "FULCRUM_SYNC_CUBE_API_URL": f"http://127.0.0.1:{closed_port()}"}
    result = doctor(down, "--log-format", "json")
    assert result.exit_code == 3, result.output
    checks = marks(result)
    assert checks["cube acme"] == "✗" and checks["cube initech"] == "-"
    assert "check that Cube is up and reachable" in " ".join(result.stdout.split())


def test_snowflake_target_is_logged_into(cli_env: dict[str, str]) -> None:
    env = {
        **cli_env,
        "FULCRUM_SYNC_CACHE_TARGET": "snowflake",
        "FULCRUM_SYNC_SNOWFLAKE_ACCOUNT": "acme-xy12345",
        "FULCRUM_SYNC_SNOWFLAKE_USER": "LOADER",
        "FULCRUM_SYNC_SNOWFLAKE_PASSWORD": "sf-pa55word",
    }
    with fakesnow.patch():
        result = doctor(env)
    assert marks(result)["snowflake"] == "✓", result.output
    assert "account acme-xy12345 as LOADER, password" in result.stdout
    missing = doctor({**env, "FULCRUM_SYNC_SNOWFLAKE_PASSWORD": ""})
    assert missing.exit_code == 2 and marks(missing)["snowflake"] == "✗"
    assert "no Snowflake credentials" in missing.stdout
    assert "sf-pa55word" not in result.output + missing.output


def test_bad_settings_are_exit_2_and_json_has_every_check(
    cli: Cli, cli_env: dict[str, str]
) -> None:
    result = doctor({**cli_env, "FULCRUM_SYNC_WORKERS": "0"})
    assert result.exit_code == 2, result.output
    assert marks(result) == {"settings": "✗"}
    assert "FULCRUM_SYNC_WORKERS" in result.stdout
    as_json = cli("doctor", "--json")
    assert as_json.exit_code == 0, as_json.output
    payload = json.loads(as_json.stdout)
    assert payload["outcome"] == "succeeded"
    assert [c["name"] for c in payload["checks"]][:3] == ["settings", "database", "schema"]
    assert payload["settings"]["FULCRUM_SYNC_CUBE_API_SECRET"] == "unset"
    assert "FULCRUM_SYNC_SOURCE" in payload["settings_set"]


class _BrokenSink:
    target = "snowflake"

    def open(self) -> None:
        raise RuntimeError("the driver fell over")

    def close(self) -> None:
        pass


def test_an_unexpected_error_is_one_line_and_exit_1(cli: Cli) -> None:
    result = cli("doctor", deps=Deps(sink=_BrokenSink()))  # type: ignore[arg-type]
    assert result.exit_code == 1, result.output
    assert result.stderr.strip() == (
        "Error: internal error: RuntimeError: the driver fell over "
        "(run with --verbose for the traceback)"
    )
    verbose = cli("--verbose", "doctor", deps=Deps(sink=_BrokenSink()))  # type: ignore[arg-type]
    assert verbose.exit_code == 1 and "Traceback" in verbose.stderr
