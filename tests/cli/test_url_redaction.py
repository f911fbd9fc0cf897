"""One redaction for URLs: a password in any URL setting never shows (issue 23, item 8)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from fulcrum_sync.cli import app
from fulcrum_sync.secrets import clear_secrets, endpoint, redact, redact_url

runner = CliRunner()
MARK = "MARKpw7z"


@pytest.fixture(autouse=True)
def _forget_secrets() -> None:
    clear_secrets()


@pytest.mark.parametrize(
    ("url", "redacted", "bare"),
    [
        (
            f"http://u:{MARK}@host/cubejs-api",
            "http://u:***@host/cubejs-api",
            "http://host/cubejs-api",
        ),
        (
            f"postgresql+psycopg://app:{MARK}@db:5432/fs?sslmode=require",
            "postgresql+psycopg://app:***@db:5432/fs?sslmode=require",
            "postgresql+psycopg://db:5432/fs",
        ),
        (f"https://:{MARK}@push:9091", "https://:***@push:9091", "https://push:9091"),
        ("http://cube:4000", "http://cube:4000", "http://cube:4000"),
    ],
)
def test_redact_url_and_endpoint(url: str, redacted: str, bare: str) -> None:
    assert redact_url(url) == redacted
    assert endpoint(url) == bare


@pytest.mark.parametrize("json_out", [False, True])
def test_doctor_never_prints_the_cube_url_password(tmp_path: Path, json_out: bool) -> None:
    env = {
        "FULCRUM_SYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'state.db'}",
        "FULCRUM_SYNC_SOURCE": "cube",
        "FULCRUM_SYNC_CUBE_API_URL": f"http://u:{MARK}@127.0.0.1:9/cubejs-api",
        "FULCRUM_SYNC_CUBE_API_SECRET": "s" * 32,
        "FULCRUM_SYNC_CUBE_RETRIES": "0",
        "FULCRUM_SYNC_CUBE_TIMEOUT_SECONDS": "2",
    }
    result = runner.invoke(app, ["doctor", *(["--json"] if json_out else [])], env=env)
    assert result.exit_code in (0, 1, 2, 3), result.output
    everything = result.stdout + result.stderr
    assert everything.count(MARK) == 0
    assert "127.0.0.1:9" in everything  # the endpoint is still named


def test_a_url_setting_password_is_masked_in_any_text_once_settings_are_read() -> None:
    from fulcrum_sync.config import Settings
    from fulcrum_sync.secrets import register_secrets_from

    settings = Settings(cube_api_url=f"http://u:{MARK}@cube:4000")  # type: ignore[call-arg]
    register_secrets_from(settings)
    assert MARK not in redact(f"connect failed for password {MARK} (attempt 2)")
