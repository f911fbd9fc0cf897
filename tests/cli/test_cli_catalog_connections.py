"""``catalog load|validate|show`` with tenants' own ``cube:`` and ``cache:`` blocks: stored and
shown by the names of variables and files; an inline secret exits 2 without echoing it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine, select
from sqlalchemy.pool import NullPool
from typer.testing import CliRunner

from fulcrum_sync.catalog import parse_catalog
from fulcrum_sync.cli import app
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.catalog import read_catalog

runner = CliRunner()
SECRET = "Sup3r-s3cret-password-value"

CATALOG = """
tenants:
  - tenant_id: 1
    identifier: acme
    cube: {url: "https://cube.acme.example.com", secret_env: ACME_CUBE_SECRET}
    cache:
      account: acme-xy12345
      user: FULCRUM_LOADER
      database: ACME
      schema: CACHE
      warehouse: LOAD_XS
      password_env: ACME_SF_PASSWORD
    metrics:
      - {metric_id: orders, measure: o.count, time_dimension: o.created_at}
  - tenant_id: 2
    identifier: beta
    metrics:
      - {metric_id: orders, measure: o.count, time_dimension: o.created_at}
"""


def test_blocks_are_stored_and_shown_by_name(cli_env: dict[str, str], db_url: str) -> None:
    path = Path("c.yaml")
    path.write_text(CATALOG)
    env = {**cli_env, "ACME_SF_PASSWORD": SECRET, "ACME_CUBE_SECRET": SECRET}
    loaded = runner.invoke(app, ["catalog", "load", str(path)], env=env)
    assert loaded.exit_code == 0, loaded.output

    shown = runner.invoke(app, ["catalog", "show"], env=env)
    assert shown.exit_code == 0, shown.output
    acme = yaml.safe_load(shown.stdout)["tenants"][0]
    assert acme["cube"] == {
        "url": "https://cube.acme.example.com",
        "secret_env": "ACME_CUBE_SECRET",
    }
    assert acme["cache"] == {
        "account": "acme-xy12345",
        "user": "FULCRUM_LOADER",
        "database": "ACME",
        "schema": "CACHE",
        "warehouse": "LOAD_XS",
        "password_env": "ACME_SF_PASSWORD",
    }
    assert "cube" not in yaml.safe_load(shown.stdout)["tenants"][1]
    assert SECRET not in shown.output
    assert parse_catalog(shown.stdout) == parse_catalog(CATALOG)  # a round trip

    engine = create_engine(db_url, poolclass=NullPool)
    try:
        assert read_catalog(engine) == parse_catalog(CATALOG)
        with engine.connect() as conn:
            rows = [tuple(r) for r in conn.execute(select(t.tenants))]
    finally:
        engine.dispose()
    assert SECRET not in repr(rows)


@pytest.mark.parametrize("command", ["load", "validate"])
def test_an_inline_secret_exits_2_and_is_not_printed(cli_env: dict[str, str], command: str) -> None:
    text = CATALOG.replace("password_env: ACME_SF_PASSWORD", f"password: {SECRET}")
    Path("c.yaml").write_text(text)
    result = runner.invoke(app, ["catalog", command, "c.yaml"], env=cli_env)
    assert result.exit_code == 2, result.output
    assert "tenants[0](acme).cache" in result.output
    assert "cache.password holds a secret in the catalog" in result.output
    assert SECRET not in result.output


def test_a_secret_in_a_json_error_is_not_printed_either(cli_env: dict[str, str]) -> None:
    text = CATALOG.replace("secret_env: ACME_CUBE_SECRET", f"secret: {SECRET}")
    Path("c.yaml").write_text(text)
    result = runner.invoke(app, ["catalog", "validate", "c.yaml", "--json"], env=cli_env)
    assert result.exit_code == 2
    assert "cube.secret holds a secret" in result.output
    assert SECRET not in result.output
