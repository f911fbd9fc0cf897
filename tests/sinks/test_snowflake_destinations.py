"""Per-tenant Snowflake destinations: each tenant's cache tables land in its own account,
database and schema; one connection per destination; a destination that refuses its password,
or a tenant whose secret is missing, fails alone; no secret reaches any output or row.

Each account is a :class:`FakeAccount` (its own fakesnow instance, accepting one password),
reached through the ``connect`` factory injected with ``Deps(snowflake_connect=...)``.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.pool import NullPool
from state_db import copy_of
from typer.testing import CliRunner, Result

from fulcrum_sync.catalog import demo_catalog, dump_catalog
from fulcrum_sync.cli import app
from fulcrum_sync.secrets import clear_secrets
from fulcrum_sync.services.deps import Deps

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.snowflake_counting import FakeAccount

ACME_PASSWORD = "acme-Pw#1-unique-destination-secret"
INITECH_PASSWORD = "initech-Pw#2-unique-destination-secret"
SETTINGS_PASSWORD = "settings-Pw#3-unique-destination-secret"
SECRETS = (ACME_PASSWORD, INITECH_PASSWORD, SETTINGS_PASSWORD)

runner = CliRunner()


def _catalog_with_destinations() -> str:
    """The demo catalog, acme and initech with their own ``cache:`` (umbrella: settings)."""
    data = yaml.safe_load(dump_catalog(demo_catalog()))
    blocks = {
        "acme": {
            "account": "acme-xy12345",
            "user": "ACME_LOADER",
            "database": "ACME",
            "schema": "CACHE",
            "warehouse": "LOAD_XS",
            "password_env": "ACME_SF_PASSWORD",
        },
        "initech": {
            "account": "initech-ab98765",
            "user": "INITECH_LOADER",
            "database": "INITECH",
            "schema": "METRICS",
            "password_file": "initech-sf-password",  # a mounted secret (relative: cwd)
        },
    }
    for tenant in data["tenants"]:
        if tenant["identifier"] in blocks:
            tenant["cache"] = blocks[tenant["identifier"]]
    return str(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture
def state(demo_day_synced: Path, tmp_path: Path) -> Iterator[str]:
    url = copy_of(demo_day_synced, tmp_path)
    (tmp_path / "catalog.yaml").write_text(_catalog_with_destinations())
    (tmp_path / "initech-sf-password").write_text(INITECH_PASSWORD + "\n")
    loaded = runner.invoke(app, ["catalog", "load", "catalog.yaml"], env=_env(url))
    assert loaded.exit_code == 0, loaded.output
    yield url
    clear_secrets()


def _env(url: str, **extra: str) -> dict[str, str]:
    return {
        "FULCRUM_SYNC_DATABASE_URL": url,
        "FULCRUM_SYNC_LOG_FORMAT": "json",
        "FULCRUM_SYNC_SNOWFLAKE_ACCOUNT": "shared-cd55555",
        "FULCRUM_SYNC_SNOWFLAKE_USER": "FULCRUM_LOADER",
        "FULCRUM_SYNC_SNOWFLAKE_PASSWORD": SETTINGS_PASSWORD,
        "ACME_SF_PASSWORD": ACME_PASSWORD,
        **extra,
    }


class Accounts:
    """Three fake accounts, reached by the account name a connection asks for."""

    def __init__(self, **passwords: str) -> None:
        self.by_name = {
            "acme-xy12345": FakeAccount(passwords.get("acme", ACME_PASSWORD)),
            "initech-ab98765": FakeAccount(passwords.get("initech", INITECH_PASSWORD)),
            "shared-cd55555": FakeAccount(SETTINGS_PASSWORD),
        }
        self.connects: list[str] = []

    def connect(self, **kwargs: Any) -> Any:
        self.connects.append(kwargs["account"])
        return self.by_name[kwargs["account"]].connect(**kwargs)

    def __getitem__(self, name: str) -> FakeAccount:
        return self.by_name[name]


def _load(url: str, accounts: Accounts, *args: str, **env: str) -> Result:
    deps = Deps(snowflake_connect=accounts.connect)
    command = ["cache-load", "--grain", "day", "--target", "snowflake", "--json", *args]
    return runner.invoke(app, command, env=_env(url, **env), obj=deps)


def _report(result: Result) -> Any:
    return json.loads(result.stdout)


def _state_rows(url: str) -> list[str]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return [
                repr(tuple(row))
                for name in inspect(conn).get_table_names()
                for row in conn.execute(text(f'SELECT * FROM "{name}"'))
            ]
    finally:
        engine.dispose()


def _assert_no_secret(*texts: str) -> None:
    for secret in SECRETS:
        for text_ in texts:
            assert text_.count(secret) == 0


def test_each_tenant_lands_only_in_its_own_destination(state: str) -> None:
    accounts = Accounts()
    result = _load(state, accounts)
    assert result.exit_code == 0, result.output
    report = _report(result)
    tables = {c["context"]: c["table"] for c in report["contexts"]}
    assert tables["acme::orders"] == "ACME.CACHE.CACHE_ACME_ORDERS_DAY"
    assert tables["initech::mrr"].startswith("INITECH.METRICS.CACHE_INITECH_")
    assert tables["umbrella::appointments"].startswith("FULCRUM.CACHE.CACHE_UMBRELLA_")

    acme = accounts["acme-xy12345"].tables("ACME")
    initech = accounts["initech-ab98765"].tables("INITECH")
    shared = accounts["shared-cd55555"].tables("FULCRUM")
    assert acme and all(t.startswith("CACHE.CACHE_ACME_") for t in acme)
    assert initech and all(t.startswith("METRICS.CACHE_INITECH_") for t in initech)
    assert shared and all(t.startswith("CACHE.CACHE_UMBRELLA_") for t in shared)
    # nothing of one tenant in another's account
    assert accounts["acme-xy12345"].tables("INITECH") == set()
    assert accounts["acme-xy12345"].tables("FULCRUM") == set()
    assert accounts["initech-ab98765"].tables("ACME") == set()
    # one connection per destination, opened once for all of its tables
    assert sorted(accounts.connects) == ["acme-xy12345", "initech-ab98765", "shared-cd55555"]
    rows = accounts["acme-xy12345"].query(
        'SELECT COUNT(*) FROM "ACME"."CACHE".CACHE_ACME_ORDERS_DAY'
    )
    assert rows[0][0] > 0
    _assert_no_secret(result.output, *_state_rows(state))


def test_a_destination_refusing_its_password_fails_only_its_tenant(
    state: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    accounts = Accounts(acme="the-password-acme-changed-to")
    result = _load(state, accounts)
    assert result.exit_code == 1, result.output  # some contexts failed, the rest loaded
    report = _report(result)
    by_tenant: dict[str, set[str]] = {}
    for c in report["contexts"]:
        by_tenant.setdefault(c["context"].split("::")[0], set()).add(c["status"])
    assert by_tenant["acme"] == {"failed"}
    assert by_tenant["initech"] == by_tenant["umbrella"] == {"succeeded"}
    errors = {c["error"] for c in report["contexts"] if c["status"] == "failed"}
    assert len(errors) == 1
    (error,) = errors
    assert "the credentials were refused" in error
    assert "Incorrect username or password was specified" in error
    assert "check tenant acme's password_env ACME_SF_PASSWORD" in error
    failed = [c for c in report["contexts"] if c["status"] == "failed"]
    assert not any(c["dependency_failure"] for c in failed)  # a refusal, not an outage
    assert accounts["acme-xy12345"].tables("ACME") == set()
    assert accounts["initech-ab98765"].tables("INITECH")
    _assert_no_secret(result.output, caplog.text, *_state_rows(state))


def test_only_the_refused_tenant_selected_is_exit_2(state: str) -> None:
    accounts = Accounts(acme="the-password-acme-changed-to")
    result = _load(state, accounts, "--tenant", "acme")
    assert result.exit_code == 2, result.output
    assert "the credentials were refused" in result.output
    _assert_no_secret(result.output, *_state_rows(state))


def test_a_missing_variable_fails_that_tenant_naming_the_fix(state: str) -> None:
    accounts = Accounts()
    result = _load(state, accounts, ACME_SF_PASSWORD="")
    assert result.exit_code == 1, result.output
    report = _report(result)
    acme = [c for c in report["contexts"] if c["context"].startswith("acme::")]
    assert acme and {c["status"] for c in acme} == {"failed"}
    assert "environment variable ACME_SF_PASSWORD is empty; set it" in acme[0]["error"]
    others = [c for c in report["contexts"] if not c["context"].startswith("acme::")]
    assert {c["status"] for c in others} == {"succeeded"}
    assert "acme-xy12345" not in accounts.connects

    alone = _load(state, Accounts(), "--tenant", "acme", ACME_SF_PASSWORD="")
    assert alone.exit_code == 2, alone.output
    assert "ACME_SF_PASSWORD is empty" in alone.output
    _assert_no_secret(result.output, alone.output, *_state_rows(state))


def test_a_missing_mounted_file_names_the_file(state: str, tmp_path: Path) -> None:
    (tmp_path / "initech-sf-password").unlink()
    result = _load(state, Accounts(), "--tenant", "initech")
    assert result.exit_code == 2, result.output
    assert (
        "tenant initech's Snowflake password cannot be read: file initech-sf-password "
        "(No such file or directory)" in result.output
    )
    assert "mount the secret there" in result.output


def _share_acme_destination(tmp_path: Path, state: str) -> None:
    """Give umbrella acme's account, user and warehouse, with a database of its own."""
    data = yaml.safe_load((tmp_path / "catalog.yaml").read_text())
    for tenant in data["tenants"]:
        if tenant["identifier"] == "umbrella":  # same account, user, role, warehouse as acme
            tenant["cache"] = {**data["tenants"][0]["cache"], "database": "UMBRELLA"}
    (tmp_path / "catalog.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    assert runner.invoke(app, ["catalog", "load", "catalog.yaml"], env=_env(state)).exit_code == 0


def test_tenants_sharing_a_destination_share_one_connection(state: str, tmp_path: Path) -> None:
    _share_acme_destination(tmp_path, state)
    accounts = Accounts()
    accounts["acme-xy12345"].query('CREATE DATABASE "UMBRELLA"')  # the customer's database
    accounts["acme-xy12345"].query('CREATE SCHEMA "UMBRELLA"."CACHE"')
    result = _load(state, accounts)
    assert result.exit_code == 0, result.output
    assert sorted(accounts.connects) == ["acme-xy12345", "initech-ab98765"]
    acme = accounts["acme-xy12345"]
    assert acme.tables("UMBRELLA") and acme.tables("ACME")


def test_a_missing_database_fails_only_its_tenant_on_a_shared_connection(
    state: str, tmp_path: Path
) -> None:
    _share_acme_destination(tmp_path, state)  # UMBRELLA is never created in acme's account
    result = _load(state, Accounts())
    assert result.exit_code == 1, result.output
    status: dict[str, set[str]] = {}
    for c in _report(result)["contexts"]:
        status.setdefault(c["context"].split("::")[0], set()).add(c["status"])
    assert status == {"acme": {"succeeded"}, "initech": {"succeeded"}, "umbrella": {"failed"}}


def test_doctor_logs_into_each_destination_once_naming_its_tenants(state: str) -> None:
    env = _env(state, FULCRUM_SYNC_CACHE_TARGET="snowflake")
    accounts = Accounts()
    ok = runner.invoke(app, ["doctor"], env=env, obj=Deps(snowflake_connect=accounts.connect))
    assert ok.exit_code == 0, ok.output
    text = " ".join(ok.stdout.split())
    acme = "snowflake account acme-xy12345 as ACME_LOADER (warehouse LOAD_XS), password"
    assert f"reachable: {acme}, for tenants acme" in text
    assert "initech-ab98765 as INITECH_LOADER, password, for tenants initech" in text
    assert "shared-cd55555 as FULCRUM_LOADER, password, for tenants umbrella" in text
    assert sorted(accounts.connects) == ["acme-xy12345", "initech-ab98765", "shared-cd55555"]

    refused = Accounts(initech="rotated-without-telling-us")
    bad = runner.invoke(app, ["doctor"], env=env, obj=Deps(snowflake_connect=refused.connect))
    assert bad.exit_code == 2, bad.output
    text = " ".join(bad.stdout.split())
    assert "the credentials were refused" in text and "for tenants initech" in text
    _assert_no_secret(ok.output, bad.output)


def test_different_destinations_load_at_the_same_time(state: str) -> None:
    """acme's first statement waits for initech's login: only loads run at once get past it."""
    accounts = Accounts()
    initech_in = threading.Event()
    waited: list[bool] = []

    def connect(**kwargs: Any) -> Any:
        conn = accounts.connect(**kwargs)
        if kwargs["account"] == "initech-ab98765":
            initech_in.set()
        return conn

    def acme_statement(sql: str) -> None:
        if not waited:
            waited.append(initech_in.wait(timeout=60))

    accounts["acme-xy12345"].counter.after_statement.append(acme_statement)
    deps = Deps(snowflake_connect=connect)
    command = ["cache-load", "--grain", "day", "--target", "snowflake", "--json"]
    result = runner.invoke(app, command, env=_env(state), obj=deps)
    assert result.exit_code == 0, result.output
    assert waited == [True]


def test_verify_compares_each_tenant_with_its_own_destination(state: str) -> None:
    accounts = Accounts()
    assert _load(state, accounts).exit_code == 0
    env = _env(state, FULCRUM_SYNC_CACHE_TARGET="snowflake")
    deps = Deps(snowflake_connect=accounts.connect)
    same = runner.invoke(app, ["verify", "--grain", "day", "--json"], env=env, obj=deps)
    assert same.exit_code == 0, same.output
    accounts["initech-ab98765"].query('DELETE FROM "INITECH"."METRICS"."CACHE_INITECH_MRR_DAY"')
    deps = Deps(snowflake_connect=accounts.connect)
    differs = runner.invoke(app, ["verify", "--grain", "day", "--json"], env=env, obj=deps)
    assert differs.exit_code == 1, differs.output
    assert "initech::mrr" in differs.stdout
    _assert_no_secret(same.output, differs.output)


def test_sync_cache_load_loads_each_tenant_into_its_own_destination(state: str) -> None:
    """The scheduled path (``sync --cache-load``): the same routing, one connection each."""
    accounts = Accounts(acme="the-password-acme-changed-to")
    env = _env(state, FULCRUM_SYNC_CACHE_TARGET="snowflake")
    deps = Deps(snowflake_connect=accounts.connect)
    command = ["sync", "-g", "day", "--no-patterns", "--force-full", "--cache-load", "--json"]
    result = runner.invoke(app, command, env=env, obj=deps)
    assert result.exit_code == 1, result.output  # acme's loads failed; the syncs stand
    cache = {c["context"]: c["cache"]["status"] for c in _report(result)["contexts"]}
    assert {s for k, s in cache.items() if k.startswith("acme::")} == {"failed"}
    assert {s for k, s in cache.items() if not k.startswith("acme::")} == {"succeeded"}
    assert accounts["initech-ab98765"].tables("INITECH")
    assert accounts["shared-cd55555"].tables("FULCRUM")
    assert accounts.connects.count("acme-xy12345") == 1  # refused once, not per context
    assert accounts.connects.count("initech-ab98765") == 1
    _assert_no_secret(result.output, *_state_rows(state))
