"""``cache-load``: local target on a synced database, Snowflake target on fakesnow."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fakesnow
import pytest
import snowflake.connector
from cli_invoke import Cli, Ran
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import Engine, func, inspect, select, text
from state_db import copy_of, new_state

from fulcrum_sync.catalog import active_contexts, demo_catalog
from fulcrum_sync.domain import Grain
from fulcrum_sync.sinks.local import cache_table
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import open_engine

PASSWORD = "pw-Zx9!cli-unique-snowflake-password"
PASSPHRASE = "pp-Qw7#cli-unique-key-passphrase"
HOSTILE = 'x"; drop table y; --'
ACME_DAY = ["acme::active_users", "acme::new_revenue", "acme::orders"]


def load_acme(cli: Cli, *args: str, env: dict[str, str] | None = None) -> Ran:
    return cli("cache-load", "--grain", "day", "--tenant", "acme", *args, env=env)


def snowflake_env(**extra: str) -> dict[str, str]:
    env = {
        "FULCRUM_SYNC_SNOWFLAKE_ACCOUNT": "acme-xy12345",
        "FULCRUM_SYNC_SNOWFLAKE_USER": "FULCRUM_LOADER",
        "FULCRUM_SYNC_SNOWFLAKE_PASSWORD": PASSWORD,
    }
    return {**env, **extra}


@pytest.fixture(scope="module")
def synced_acme(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite state database after a real ``sync --grain day --tenant acme``."""
    with new_state(tmp_path_factory, "synced") as (path, cli):
        cli.ok("sync", "-g", "day", "-t", "acme", "--no-patterns")
    return path


@pytest.fixture
def acme_url(synced_acme: Path, tmp_path: Path) -> str:
    return copy_of(synced_acme, tmp_path, "acme.db")


@pytest.fixture
def acme(acme_url: str) -> Cli:
    """The CLI on a copy of the synced database."""
    return Cli.demo(acme_url)


@pytest.fixture
def fake_snowflake() -> Iterator[None]:
    with fakesnow.patch():
        yield


def stored_rows(engine: Engine, tenant_id: int, metric: str) -> int:
    total = 0
    with engine.connect() as conn:
        for table in (t.metric_time_series, t.metric_dimensional_time_series):
            total += conn.execute(
                select(func.count())
                .select_from(table)
                .where(table.c.tenant_id == tenant_id, table.c.metric_id == metric)
                .where(table.c.grain == "day")
            ).scalar_one()
    return total


def cache_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        names = [n for n in inspect(conn).get_table_names() if n.startswith("cache_")]
        return {
            n: conn.execute(select(func.count()).select_from(cache_table(n))).scalar_one()
            for n in names
            if n != "cache_loads"
        }


def snowflake_counts() -> dict[str, int]:
    conn = snowflake.connector.connect(database="FULCRUM", schema="CACHE")
    cur = conn.cursor()
    cur.execute("SHOW TABLES IN SCHEMA FULCRUM.CACHE")
    names = [row[1] for row in cur.fetchall()]
    counts = {}
    for name in names:
        cur.execute(f'SELECT COUNT(*) FROM "FULCRUM"."CACHE"."{name}"')
        counts[name] = cur.fetchone()[0]
    return counts


def assert_no_secrets(result: Ran, caplog: pytest.LogCaptureFixture, *secrets: str) -> None:
    texts = [result.stdout, result.stderr, caplog.text, repr(result.exception)]
    for secret in secrets:
        assert all(secret not in text for text in texts), f"secret leaked: {secret[:6]}..."


# --------------------------------------------------------------------------- local target


def test_sync_then_cache_load_twice_fills_one_table_per_context(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    cli = Cli.demo(url)
    assert cli("sync", "--grain", "day", "--no-patterns").exit_code == 0
    first = cli("cache-load", "--grain", "day")
    assert first.exit_code == 0, first.output
    engine = open_engine(url)
    counts = cache_counts(engine)
    contexts = active_contexts(demo_catalog(), Grain.DAY)
    expected = {f"cache_{c.tenant.identifier}_{c.metric.metric_id}_day" for c in contexts}
    assert set(counts) == expected  # globex (cache disabled) and retired metrics get none
    for ctx in contexts:
        name = f"cache_{ctx.tenant.identifier}_{ctx.metric.metric_id}_day"
        assert counts[name] == stored_rows(engine, ctx.tenant.tenant_id, ctx.metric.metric_id)
        assert counts[name] > 0
    assert "rows loaded" in first.stdout and "size MB" in first.stdout
    assert "main.cache_acme_new_revenue_day" in first.stdout
    assert f"{len(contexts)} loaded, 0 skipped, 0 failed" in first.stdout

    second = cli("cache-load", "--grain", "day", "--force")  # unchanged: forced
    assert second.exit_code == 0, second.output
    assert cache_counts(engine) == counts  # replaced, not appended
    with engine.connect() as conn:
        loads = conn.execute(select(t.cache_loads.c.status, t.cache_loads.c.rows_loaded)).all()
    assert len(loads) == len(contexts)
    assert {status for status, _ in loads} == {"succeeded"}
    assert sum(rows for _, rows in loads) == sum(counts.values())
    engine.dispose()


def test_json_output_on_sqlite_and_postgresql(cli: Cli, db_url: str) -> None:
    assert cli("sync", "-g", "day", "-t", "acme", "--no-patterns").exit_code == 0
    result = cli("cache-load", "--grain", "daily", "--tenant", "acme", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["grain"], data["target"], data["outcome"]) == ("day", "local", "succeeded")
    assert data["run_id"]
    assert [c["context"] for c in data["contexts"]] == ACME_DAY
    for c in data["contexts"]:
        assert c["status"] == "succeeded" and c["rows"] > 0
        assert c["size_mb"] > 0 and c["size_estimated"] is False
        assert c["table"].endswith(c["context"].replace("::", "_") + "_day")
        assert c["window"]["start"] <= c["window"]["end"]
        assert c["seconds"] >= 0
    assert data["rows"] == sum(c["rows"] for c in data["contexts"])


def test_a_failing_context_does_not_stop_the_others(acme: Cli, acme_url: str) -> None:
    engine = open_engine(acme_url)
    with engine.begin() as conn:  # a table in the way, with other columns: the insert fails
        conn.execute(text("CREATE TABLE cache_acme_orders_day (x INTEGER NOT NULL)"))
    result = load_acme(acme)
    assert result.exit_code == 1, result.output
    assert "failed acme::orders: SQLite at " in result.stdout
    assert ": cannot load main.cache_acme_orders_day" in result.stdout
    assert "2 loaded, 0 skipped, 1 failed" in result.stdout
    counts = cache_counts(engine)
    assert counts["cache_acme_new_revenue_day"] > 0 and counts["cache_acme_active_users_day"] > 0
    with engine.connect() as conn:
        row = conn.execute(
            select(t.cache_loads.c.status, t.cache_loads.c.error).where(
                t.cache_loads.c.metric_id == "orders"
            )
        ).one()
    assert row.status == "failed" and "cache_acme_orders_day" in row.error
    engine.dispose()


def test_contexts_without_stored_rows_are_skipped(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    cli = Cli.demo(url)
    assert cli("discover", "--grain", "day").exit_code == 0
    result = cli("cache-load", "--grain", "day", "--tenant", "umbrella")
    assert result.exit_code == 0, result.output
    assert "0 loaded, 3 skipped, 0 failed" in result.stdout
    assert "skipped umbrella::appointments: no stored rows" in result.stdout
    assert cache_counts(open_engine(url)) == {
        "cache_umbrella_appointments_day": 0,
        "cache_umbrella_no_shows_day": 0,
        "cache_umbrella_patients_new_day": 0,
    }


def test_nothing_discovered_is_exit_0_with_a_hint(tmp_path: Path) -> None:
    result = Cli.demo(f"sqlite:///{tmp_path}/s.db")("cache-load", "--grain", "week")
    assert result.exit_code == 0, result.output
    assert "no active contexts" in result.stdout and "sync --grain week" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tenant", HOSTILE], "invalid tenant"),
        (["--metric", HOSTILE], "invalid metric"),
        (["--tenant", "nobody"], "unknown tenant 'nobody'"),
        (["--target", "bigquery"], "unknown cache target 'bigquery'"),
        (["--target", "snowflake"], "FULCRUM_SYNC_SNOWFLAKE_ACCOUNT"),
    ],
)
def test_bad_usage_is_exit_2_and_loads_nothing(
    acme: Cli, acme_url: str, args: list[str], message: str
) -> None:
    result = acme("cache-load", "--grain", "day", *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert cache_counts(open_engine(acme_url)) == {}


def test_bad_grain_is_exit_2(acme: Cli) -> None:
    result = acme("cache-load", "--grain", "hourly")
    assert result.exit_code == 2 and "unknown grain 'hourly'" in result.stderr


def test_help_ends_with_an_example() -> None:
    result = Cli()("cache-load", "--help")
    assert result.exit_code == 0
    assert "--target" in result.stdout
    assert "Example: fulcrum-sync cache-load --grain day" in result.stdout


# --------------------------------------------------------------------------- snowflake target


def test_snowflake_target_matches_the_local_one(
    acme: Cli, fake_snowflake: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    local = load_acme(acme, "--json")
    remote = load_acme(acme, "--target", "snowflake", env=snowflake_env())
    assert remote.exit_code == 0, remote.output
    assert "FULCRUM.CACHE.CACHE_ACME_NEW_REVENUE_DAY" in remote.stdout
    assert "~ size estimated" in remote.stdout  # fakesnow reports no table size
    local_counts = {
        c["table"].split(".")[-1].upper(): c["rows"] for c in json.loads(local.stdout)["contexts"]
    }
    assert snowflake_counts() == local_counts
    again = load_acme(acme, "--target", "snowflake", "--force", "--json", env=snowflake_env())
    assert again.exit_code == 0, again.output
    data = json.loads(again.stdout)
    assert data["target"] == "snowflake"
    assert {c["table"]: c["rows"] for c in data["contexts"]} == {
        f"FULCRUM.CACHE.{name}": rows for name, rows in local_counts.items()
    }
    assert all(c["size_estimated"] and c["size_mb"] > 0 for c in data["contexts"])
    windows = {c["context"]: c["window"] for c in json.loads(local.stdout)["contexts"]}
    assert {c["context"]: c["window"] for c in data["contexts"]} == windows
    assert snowflake_counts() == local_counts  # replaced, not appended
    assert "cache load succeeded" in caplog.text  # the log was captured...
    assert_no_secrets(remote, caplog, PASSWORD)  # ...and holds no password
    assert_no_secrets(again, caplog, PASSWORD)
    kwargs = snowflake.connector.connect.call_args_list[0].kwargs  # type: ignore[attr-defined]
    assert kwargs["password"] == PASSWORD and kwargs["database"] == "FULCRUM"


def test_snowflake_key_pair_from_the_environment(
    acme: Cli, fake_snowflake: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSPHRASE.encode()),
    ).decode()
    env = snowflake_env(
        FULCRUM_SYNC_SNOWFLAKE_PASSWORD="",
        FULCRUM_SYNC_SNOWFLAKE_PRIVATE_KEY=pem,
        FULCRUM_SYNC_SNOWFLAKE_PRIVATE_KEY_PASSPHRASE=PASSPHRASE,
    )
    result = load_acme(acme, "--target", "snowflake", env=env)
    assert result.exit_code == 0, result.output
    kwargs = snowflake.connector.connect.call_args.kwargs  # type: ignore[attr-defined]
    assert "password" not in kwargs and kwargs["authenticator"] == "SNOWFLAKE_JWT"
    loaded = serialization.load_der_private_key(kwargs["private_key"], None)
    assert loaded.public_key().public_numbers() == key.public_key().public_numbers()
    body = [line for line in pem.splitlines() if not line.startswith("-----")]
    assert_no_secrets(result, caplog, PASSPHRASE, *body)

    wrong = {**env, "FULCRUM_SYNC_SNOWFLAKE_PRIVATE_KEY_PASSPHRASE": "not-" + PASSPHRASE}
    refused = load_acme(acme, "--target", "snowflake", env=wrong)
    assert refused.exit_code == 2 and "passphrase" in refused.stderr
    assert_no_secrets(refused, caplog, PASSPHRASE, *body)


def test_snowflake_failure_in_one_context_does_not_stop_the_others(
    acme: Cli, fake_snowflake: None, caplog: pytest.LogCaptureFixture
) -> None:
    conn = snowflake.connector.connect(database="FULCRUM", schema="CACHE")
    conn.cursor().execute('CREATE TABLE "FULCRUM"."CACHE"."CACHE_ACME_ORDERS_DAY" (X INTEGER)')
    result = load_acme(acme, "--target", "snowflake", env=snowflake_env())
    assert result.exit_code == 1, result.output
    assert (
        "failed acme::orders: Snowflake account acme-xy12345: cannot load "
        "FULCRUM.CACHE.CACHE_ACME_ORDERS_DAY"
    ) in result.stdout
    counts = snowflake_counts()
    assert counts["CACHE_ACME_NEW_REVENUE_DAY"] > 0 and counts["CACHE_ACME_ACTIVE_USERS_DAY"] > 0
    assert counts["CACHE_ACME_ORDERS_DAY"] == 0
    assert_no_secrets(result, caplog, PASSWORD)


def test_snowflake_unreachable_is_exit_3_without_the_password(
    acme: Cli, fake_snowflake: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    connect: Any = snowflake.connector.connect
    connect.side_effect = snowflake.connector.errors.OperationalError(
        f"250003: Failed to get the response from {PASSWORD}: could not reach host"
    )
    result = load_acme(acme, "--target", "snowflake", env=snowflake_env())
    assert result.exit_code == 3, result.output
    assert "Snowflake account acme-xy12345: cannot connect as FULCRUM_LOADER" in result.stderr
    assert "***" in result.stderr
    assert_no_secrets(result, caplog, PASSWORD)


def test_snowflake_refusing_the_password_is_exit_2_without_the_password(
    acme: Cli, fake_snowflake: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    connect: Any = snowflake.connector.connect
    connect.side_effect = snowflake.connector.errors.DatabaseError(
        msg=f"Failed to connect to DB: Incorrect username or password was specified ({PASSWORD})",
        errno=390100,
    )
    result = load_acme(acme, "--target", "snowflake", env=snowflake_env())
    assert result.exit_code == 2, result.output
    assert "the credentials were refused" in result.stderr
    assert "(check FULCRUM_SYNC_SNOWFLAKE_PASSWORD)" in result.stderr
    assert_no_secrets(result, caplog, PASSWORD)


def test_snowflake_hostile_names_reach_no_sql(acme: Cli, fake_snowflake: None) -> None:
    for option in ("--tenant", "--metric"):
        result = acme(
            "cache-load",
            "--grain",
            "day",
            "--target",
            "snowflake",
            option,
            HOSTILE,
            env=snowflake_env(),
        )
        assert result.exit_code == 2, result.output
        assert "invalid" in result.stderr
    assert snowflake.connector.connect.call_count == 0  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- unchanged contexts


@pytest.mark.parametrize("target", ["local", "snowflake"])
def test_a_load_copies_only_the_contexts_whose_series_changed(
    tmp_path: Path, target: str, request: pytest.FixtureRequest
) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    cli = Cli.demo(url)
    env = {"FULCRUM_SYNC_TODAY": "2025-08-06", **(snowflake_env() if target == "snowflake" else {})}
    if target == "snowflake":
        request.getfixturevalue("fake_snowflake")
    sync = ("sync", "--grain", "day", "--tenant", "acme", "--no-patterns")
    assert cli(*sync, env=env).exit_code == 0

    def load() -> dict[str, Any]:
        result = load_acme(cli, "--target", target, "--json", env=env)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def connects() -> int:
        return snowflake.connector.connect.call_count if target == "snowflake" else 0  # type: ignore[attr-defined]

    def counts() -> dict[str, int]:
        if target == "snowflake":
            return {k.lower(): v for k, v in snowflake_counts().items()}
        return cache_counts(open_engine(url))

    first = load()
    assert (first["succeeded"], first["unchanged"]) == (3, 0)
    loaded, before = counts(), connects()

    second = load()  # no sync in between
    assert (second["succeeded"], second["unchanged"], second["rows"]) == (0, 3, 0)
    assert {c["status"] for c in second["contexts"]} == {"unchanged"}
    assert connects() == before  # nothing to load: the target is not even connected to
    assert counts() == loaded

    changed = cli(*sync, "--metric", "orders", env={**env, "FULCRUM_SYNC_TODAY": "2025-08-07"})
    assert changed.exit_code == 0, changed.output
    third = load()
    status = {c["context"]: c["status"] for c in third["contexts"]}
    assert status == {
        "acme::active_users": "unchanged",
        "acme::new_revenue": "unchanged",
        "acme::orders": "succeeded",
    }
    engine = open_engine(url)
    after = counts()
    assert (
        after["cache_acme_orders_day"]
        == stored_rows(engine, 1, "orders")
        > loaded["cache_acme_orders_day"]
    )
    assert {k: v for k, v in after.items() if "orders" not in k} == {
        k: v for k, v in loaded.items() if "orders" not in k
    }
    forced = load_acme(cli, "--target", target, "--force", "--json", env=env)
    assert json.loads(forced.stdout)["succeeded"] == 3  # --force loads unchanged ones too
    engine.dispose()
