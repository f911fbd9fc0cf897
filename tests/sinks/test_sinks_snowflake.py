"""The Snowflake sink on fakesnow (the real connector API over DuckDB), and its settings."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import fakesnow
import pandas as pd
import pytest
import snowflake.connector
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from fulcrum_sync.config import load_settings
from fulcrum_sync.domain import Grain, InputError, SinkError
from fulcrum_sync.sinks import build_sink
from fulcrum_sync.sinks.snowflake import SnowflakeConfig, SnowflakeSink

PASSWORD = "pw-Zx9!unique-snowflake-password"
PASSPHRASE = "pp-Qw7#unique-key-passphrase"
LOADED_AT = datetime(2025, 7, 3, 4, 5, 6, tzinfo=UTC)


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(
    key: rsa.RSAPrivateKey, passphrase: str | None = None, *, traditional: bool = False
) -> str:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    fmt = (
        serialization.PrivateFormat.TraditionalOpenSSL
        if traditional
        else (serialization.PrivateFormat.PKCS8)
    )
    return key.private_bytes(serialization.Encoding.PEM, fmt, encryption).decode()


def _der(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _config(**overrides: Any) -> SnowflakeConfig:
    values: dict[str, Any] = {
        "snowflake_account": "acme-xy12345",
        "snowflake_user": "FULCRUM_LOADER",
        "snowflake_password": SecretStr(PASSWORD),
    }
    values.update(overrides)
    return SnowflakeConfig.from_settings(load_settings(**values))


def _frame(
    days: int, *, slices: tuple[str, ...] = ("eu", "us"), scale: float = 1.0
) -> pd.DataFrame:
    records: list[tuple[Any, ...]] = []
    for i in range(days):
        day = date(2025, 7, 1 + i)
        records.append((day, None, None, 100.0 * scale + i))
        records += [(day, "region", s, 10.0 * scale + i) for s in slices]
    return pd.DataFrame.from_records(
        records, columns=["date", "dimension_name", "dimension_slice", "value"]
    )


@pytest.fixture
def sink() -> Iterator[SnowflakeSink]:
    with fakesnow.patch():
        s = SnowflakeSink(_config())
        s.open()
        yield s
        s.close()


def _query(sink: SnowflakeSink, sql: str) -> list[tuple[Any, ...]]:
    cur = sink._conn.cursor()
    cur.execute(sql)
    return list(cur.fetchall())


# --------------------------------------------------------------------------- loading


def test_table_naming_and_qualified_name() -> None:
    sink = SnowflakeSink(_config(snowflake_database="analytics", snowflake_schema="metric_cache"))
    table = sink.table_for("acme", "new-revenue", Grain.WEEK)
    assert table.name == "CACHE_ACME_NEW_REVENUE_WEEK"
    assert table.qualified == "ANALYTICS.METRIC_CACHE.CACHE_ACME_NEW_REVENUE_WEEK"


def test_load_creates_the_table_with_base_and_dimension_rows(sink: SnowflakeSink) -> None:
    table = sink.table_for("acme", "new_revenue", Grain.DAY)
    stats = sink.replace(table, _frame(3), Grain.DAY, LOADED_AT)
    assert stats.rows == 9
    assert stats.size_bytes and stats.size_bytes > 0
    assert stats.size_estimated  # fakesnow reports BYTES = 0
    rows = _query(
        sink,
        'SELECT "DATE", "DIMENSION_NAME", "DIMENSION_SLICE", "VALUE", "GRAIN", "LOADED_AT" '
        'FROM "FULCRUM"."CACHE"."CACHE_ACME_NEW_REVENUE_DAY" '
        'ORDER BY "DIMENSION_NAME" NULLS FIRST, "DIMENSION_SLICE", "DATE"',
    )
    assert rows[0] == (date(2025, 7, 1), None, None, 100.0, "day", datetime(2025, 7, 3, 4, 5, 6))
    assert [r[1:3] for r in rows[3:5]] == [("region", "eu"), ("region", "eu")]
    assert {r[4] for r in rows} == {"day"}
    names = [r[1] for r in _query(sink, "SHOW TABLES IN SCHEMA FULCRUM.CACHE")]
    assert names == ["CACHE_ACME_NEW_REVENUE_DAY"]  # the stage table is gone


def test_reload_replaces_not_appends(sink: SnowflakeSink) -> None:
    table = sink.table_for("acme", "orders", Grain.DAY)
    sink.replace(table, _frame(5), Grain.DAY, LOADED_AT)
    stats = sink.replace(table, _frame(2, slices=("eu",), scale=2.0), Grain.DAY, LOADED_AT)
    assert stats.rows == 4
    rows = _query(sink, 'SELECT "VALUE" FROM FULCRUM.CACHE.CACHE_ACME_ORDERS_DAY ORDER BY 1')
    assert [r[0] for r in rows] == [20.0, 21.0, 200.0, 201.0]


def test_ensure_table_creates_an_empty_table_and_keeps_existing_rows(sink: SnowflakeSink) -> None:
    empty = sink.table_for("acme", "active_users", Grain.DAY)
    sink.ensure_table(empty)
    assert _query(sink, "SELECT COUNT(*) FROM FULCRUM.CACHE.CACHE_ACME_ACTIVE_USERS_DAY") == [(0,)]
    full = sink.table_for("acme", "orders", Grain.DAY)
    sink.replace(full, _frame(2), Grain.DAY, LOADED_AT)
    sink.ensure_table(full)
    assert _query(sink, "SELECT COUNT(*) FROM FULCRUM.CACHE.CACHE_ACME_ORDERS_DAY") == [(6,)]


def test_replace_with_an_empty_frame_empties_the_table(sink: SnowflakeSink) -> None:
    table = sink.table_for("acme", "orders", Grain.DAY)
    sink.replace(table, _frame(2), Grain.DAY, LOADED_AT)
    stats = sink.replace(table, _frame(0), Grain.DAY, LOADED_AT)
    assert stats.rows == 0


def test_a_failed_insert_rolls_back_and_keeps_the_old_rows(sink: SnowflakeSink) -> None:
    table = sink.table_for("acme", "orders", Grain.DAY)
    sink.replace(table, _frame(2), Grain.DAY, LOADED_AT)
    bad = _frame(1)
    bad.loc[0, "value"] = None  # VALUE is NOT NULL: the INSERT fails after the DELETE
    with pytest.raises(
        SinkError,
        match=r"Snowflake account [^:]+: cannot load FULCRUM\.CACHE\.CACHE_ACME_ORDERS_DAY",
    ):
        sink.replace(table, bad, Grain.DAY, LOADED_AT)
    assert _query(sink, "SELECT COUNT(*) FROM FULCRUM.CACHE.CACHE_ACME_ORDERS_DAY") == [(6,)]


def test_hostile_names_are_refused_before_any_sql() -> None:
    calls: list[dict[str, Any]] = []
    sink = SnowflakeSink(_config(), connect=lambda **kw: calls.append(kw))
    for tenant, metric in (('x"; drop table y; --', "orders"), ("acme", 'x"; drop table y; --')):
        with pytest.raises(InputError, match="invalid"):
            sink.table_for(tenant, metric, Grain.DAY)
    assert calls == []


def test_using_the_sink_before_open_is_a_sink_error() -> None:
    sink = SnowflakeSink(_config())
    with pytest.raises(SinkError, match="not open"):
        sink.ensure_table(sink.table_for("acme", "orders", Grain.DAY))


# --------------------------------------------------------------------------- settings


def test_password_settings() -> None:
    config = _config(snowflake_warehouse="LOAD_WH", snowflake_role="LOADER")
    kwargs = config.connect_kwargs()
    assert config.auth == "password"
    assert kwargs["password"] == PASSWORD
    assert "private_key" not in kwargs
    assert (kwargs["database"], kwargs["schema"]) == ("FULCRUM", "CACHE")
    assert (kwargs["warehouse"], kwargs["role"]) == ("LOAD_WH", "LOADER")


def test_key_pair_from_an_unencrypted_key_file(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    path = tmp_path / "rsa_key.p8"
    path.write_text(_pem(rsa_key))
    config = _config(snowflake_password=SecretStr(""), snowflake_private_key_path=str(path))
    kwargs = config.connect_kwargs()
    assert config.auth == "key pair"
    assert kwargs["private_key"] == _der(rsa_key)
    assert kwargs["authenticator"] == "SNOWFLAKE_JWT"
    assert "password" not in kwargs


@pytest.mark.parametrize("traditional", [False, True])
def test_key_pair_from_encrypted_pem_text(rsa_key: rsa.RSAPrivateKey, traditional: bool) -> None:
    pem = _pem(rsa_key, PASSPHRASE, traditional=traditional)
    config = _config(
        snowflake_private_key=SecretStr(pem),
        snowflake_private_key_passphrase=SecretStr(PASSPHRASE),
    )
    assert config.connect_kwargs()["private_key"] == _der(rsa_key)
    assert "password" not in config.connect_kwargs()  # the key pair wins over a password
    loaded = serialization.load_der_private_key(config.connect_kwargs()["private_key"], None)
    assert loaded.public_key().public_numbers() == rsa_key.public_key().public_numbers()


def test_key_pair_from_pem_with_escaped_newlines(rsa_key: rsa.RSAPrivateKey) -> None:
    one_line = _pem(rsa_key).strip().replace("\n", "\\n")
    config = _config(snowflake_private_key=SecretStr(one_line))
    assert config.connect_kwargs()["private_key"] == _der(rsa_key)


def test_bad_key_settings_are_input_errors_without_secrets(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey
) -> None:
    encrypted = _pem(rsa_key, PASSPHRASE)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"snowflake_private_key": SecretStr(encrypted)}, "PASSPHRASE"),
        (
            {
                "snowflake_private_key": SecretStr(encrypted),
                "snowflake_private_key_passphrase": SecretStr("wrong-" + PASSPHRASE),
            },
            "passphrase",
        ),
        (
            {
                "snowflake_private_key": SecretStr(_pem(rsa_key)),
                "snowflake_private_key_passphrase": SecretStr(PASSPHRASE),
            },
            "PASSPHRASE",
        ),
        ({"snowflake_private_key": SecretStr("not a key")}, "not a PEM private key"),
        ({"snowflake_private_key_path": str(tmp_path / "missing.p8")}, "cannot read"),
        (
            {
                "snowflake_private_key_path": str(tmp_path / "k.p8"),
                "snowflake_private_key": SecretStr(encrypted),
            },
            "not both",
        ),
        ({"snowflake_password": SecretStr("")}, "no Snowflake credentials"),
        ({"snowflake_account": ""}, "FULCRUM_SYNC_SNOWFLAKE_ACCOUNT"),
        ({"snowflake_database": 'x"; drop table y; --'}, "FULCRUM_SYNC_SNOWFLAKE_DATABASE"),
    ]
    body = [ln for ln in encrypted.splitlines() if not ln.startswith("-----")]
    for overrides, expected in cases:
        with pytest.raises(InputError, match=expected) as info:
            _config(**overrides)
        text = str(info.value)
        assert PASSPHRASE not in text and PASSWORD not in text
        assert not any(line in text for line in body)


def test_build_sink_validates_settings_without_connecting() -> None:
    with pytest.raises(InputError, match="FULCRUM_SYNC_SNOWFLAKE_ACCOUNT"):
        build_sink("snowflake", load_settings(), engine=None)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="unknown cache target 'bigquery'"):
        build_sink("bigquery", load_settings(), engine=None)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- secrets


def test_secrets_stay_out_of_reprs(rsa_key: rsa.RSAPrivateKey) -> None:
    pem = _pem(rsa_key, PASSPHRASE)
    config = _config(
        snowflake_private_key=SecretStr(pem),
        snowflake_private_key_passphrase=SecretStr(PASSPHRASE),
    )
    for text in (repr(config), str(config), repr(SnowflakeSink(config))):
        assert PASSWORD not in text and PASSPHRASE not in text
        assert "private_key" not in text and "secrets" not in text
        assert not any(line in text for line in pem.splitlines()[1:-1])


def test_connector_errors_become_sink_errors_with_secrets_masked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)

    def echoing_connect(**kwargs: Any) -> Any:
        raise snowflake.connector.errors.DatabaseError(
            f"250001: login failed for {kwargs['user']} with password {kwargs['password']}"
        )

    sink = SnowflakeSink(_config(), connect=echoing_connect)
    with pytest.raises(SinkError) as info:
        sink.open()
    text = str(info.value)
    assert text.startswith("Snowflake account acme-xy12345: cannot connect as FULCRUM_LOADER")
    assert info.value.endpoint == "acme-xy12345"
    assert "login failed" in text and "***" in text
    assert PASSWORD not in text
    assert info.value.__cause__ is None  # the echoing driver error is not chained
    assert PASSWORD not in caplog.text


def test_connector_errors_without_secrets_are_chained() -> None:
    error = snowflake.connector.errors.OperationalError("250003: could not reach host")

    def failing_connect(**kwargs: Any) -> Any:
        raise error

    with pytest.raises(SinkError, match="could not reach host") as info:
        SnowflakeSink(_config(), connect=failing_connect).open()
    assert info.value.__cause__ is error
