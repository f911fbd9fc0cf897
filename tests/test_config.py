"""Settings: defaults, the FULCRUM_SYNC_ prefix, .env, secrets and errors (SPEC §7)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from fulcrum_sync.config import DEFAULT_DATABASE_URL, Settings, load_settings, mask_url
from fulcrum_sync.domain import DEFAULT_LOOKBACK, Grain, InputError, SyncType


def test_defaults() -> None:
    settings = load_settings()
    assert settings.database_url.get_secret_value() == DEFAULT_DATABASE_URL
    assert DEFAULT_DATABASE_URL == "sqlite:///fulcrum_sync.db"  # a file in the working directory
    assert settings.source == "demo"
    assert settings.history_start == date(2025, 7, 1)
    assert settings.log_format == "auto"
    assert settings.workers >= 1
    assert settings.cube.api_secret.get_secret_value() == ""
    assert settings.lookback == DEFAULT_LOOKBACK


def test_environment_with_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FULCRUM_SYNC_SOURCE", "cube")
    monkeypatch.setenv("FULCRUM_SYNC_CUBE_API_URL", "https://cube.example.com")
    monkeypatch.setenv("FULCRUM_SYNC_HISTORY_START", "2024-01-01")
    monkeypatch.setenv("FULCRUM_SYNC_WORKERS", "8")
    monkeypatch.setenv("FULCRUM_SYNC_LOOKBACK_WEEK_INCREMENTAL", "6")
    monkeypatch.setenv("SOURCE", "ignored-without-prefix")
    settings = load_settings()
    assert settings.source == "cube"
    assert settings.cube.api_url == "https://cube.example.com"
    assert settings.history_start == date(2024, 1, 1)
    assert settings.workers == 8
    assert settings.lookback[Grain.WEEK][SyncType.INCREMENTAL] == 6
    assert settings.lookback[Grain.WEEK][SyncType.FULL] == 104


def test_dotenv_file_in_the_working_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    # conftest runs each test in its own tmp_path, so ./.env is this test's file.
    Path(".env").write_text(
        "FULCRUM_SYNC_SOURCE=cube\n"
        "FULCRUM_SYNC_CUBE_API_SECRET=from-dotenv\n"
        "FULCRUM_SYNC_WORKERS=3\n"
        "UNRELATED=1\n"
    )
    settings = load_settings()
    assert settings.source == "cube"
    assert settings.cube.api_secret.get_secret_value() == "from-dotenv"
    assert settings.workers == 3
    monkeypatch.setenv("FULCRUM_SYNC_WORKERS", "5")  # the environment wins over .env
    assert load_settings().workers == 5


def test_overrides() -> None:
    assert load_settings(workers=2).workers == 2


def test_secrets_never_show(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FULCRUM_SYNC_DATABASE_URL", "postgresql+psycopg://u:s3cret@db:5432/x")
    monkeypatch.setenv("FULCRUM_SYNC_CUBE_API_SECRET", "cube-s3cret")
    monkeypatch.setenv("FULCRUM_SYNC_SNOWFLAKE_PASSWORD", "snow-s3cret")
    settings = load_settings()
    for text in (repr(settings), str(settings), str(settings.model_dump()), str(vars(settings))):
        assert "s3cret" not in text
    assert settings.cube.api_secret.get_secret_value() == "cube-s3cret"
    assert settings.masked_database_url == "postgresql+psycopg://u:***@db:5432/x"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql+psycopg://u:s3cret@127.0.0.1:1/x", "postgresql+psycopg://u:***@127.0.0.1:1/x"),
        ("postgresql+psycopg://u@host/db", "postgresql+psycopg://u@host/db"),
        ("sqlite:///fulcrum_sync.db", "sqlite:///fulcrum_sync.db"),
        ("not a url", "<unparseable database URL>"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FULCRUM_SYNC_WORKERS", "many"),
        ("FULCRUM_SYNC_WORKERS", "0"),
        ("FULCRUM_SYNC_HISTORY_START", "July"),
        ("FULCRUM_SYNC_LOG_FORMAT", "xml"),
        ("FULCRUM_SYNC_DATABASE_URL", "not a url"),
    ],
)
def test_invalid_value_is_one_line_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(InputError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith(f"invalid settings: {name}: ")
    assert "\n" not in message


def test_unknown_source_is_refused_when_deps_read_the_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # config knows no source registry (no import circle): the registry refuses it in Deps.
    from fulcrum_sync.services.deps import Deps

    monkeypatch.setenv("FULCRUM_SYNC_SOURCE", "snowflake")
    with pytest.raises(InputError) as info:
        Deps().get_settings()
    assert str(info.value) == "unknown source 'snowflake': expected one of demo, cube"


def test_invalid_database_url_does_not_echo_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FULCRUM_SYNC_DATABASE_URL", "s3cret garbage")
    with pytest.raises(InputError) as info:
        load_settings()
    assert "s3cret" not in str(info.value)


def test_settings_class_reads_the_same_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FULCRUM_SYNC_DEMO_SEED", "7")
    assert Settings().demo_seed == 7
