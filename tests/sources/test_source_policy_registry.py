"""Sources behind one policy: the retry policy value, the Cube settings sub-model read from the
same variable names, the source registry, and a guard that names no source."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import httpx
import pytest
from cube_server import SECRET
from pydantic import SecretStr
from test_cli_sync_cube import closed_port
from test_source_cube import request

import fulcrum_sync
from fulcrum_sync.config import CubeSettings, Settings, load_settings
from fulcrum_sync.domain import InputError, SourceDownError
from fulcrum_sync.services.deps import Deps
from fulcrum_sync.sources import CubeSource, DemoSource, RetryPolicy, build_source, registry
from fulcrum_sync.sources.cube_factory import retry_policy
from fulcrum_sync.sources.registry import SourceEntry, source_entry, source_names

PACKAGE = Path(fulcrum_sync.__file__).parent

# A value each FULCRUM_SYNC_CUBE_* variable accepts, and how it reads back.
CUBE_VALUES = {
    "api_url": ("http://cube.internal:4000", "http://cube.internal:4000"),
    "api_secret": ("s3cret-value-for-the-test", "s3cret-value-for-the-test"),
    "tenant_claim": ("org", "org"),
    "token_ttl_seconds": ("120", 120),
    "timeout_seconds": ("7.5", 7.5),
    "wait_deadline_seconds": ("90", 90.0),
    "retries": ("2", 2),
    "retry_budget": ("7", 7),
    "max_concurrency": ("3", 3),
    "breaker_reset_seconds": ("12.5", 12.5),
    "page_size": ("500", 500),
}


def _plain(value: object) -> object:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def test_every_cube_setting_keeps_its_flat_variable_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert set(CUBE_VALUES) == set(CubeSettings.model_fields)  # a new field needs a line here
    monkeypatch.chdir(tmp_path)
    for name, (raw, _) in CUBE_VALUES.items():
        monkeypatch.setenv(f"FULCRUM_SYNC_CUBE_{name.upper()}", raw)
    monkeypatch.setenv("FULCRUM_SYNC_DATABASE_URL", "sqlite:///x.db")  # flat names stay whole
    settings = load_settings()
    for name, (_, expected) in CUBE_VALUES.items():
        assert _plain(getattr(settings.cube, name)) == expected, name
    assert settings.database_url.get_secret_value() == "sqlite:///x.db"


def test_cube_settings_come_from_a_dotenv_file_and_keyword_arguments(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(
        "FULCRUM_SYNC_CUBE_API_URL=http://from-dotenv:4000\nFULCRUM_SYNC_CUBE_RETRIES=4\n"
    )
    settings = load_settings()
    assert (settings.cube.api_url, settings.cube.retries) == ("http://from-dotenv:4000", 4)
    given = Settings(cube_api_url="http://given", cube_max_concurrency=2)  # the old keywords
    assert (given.cube.api_url, given.cube.max_concurrency) == ("http://given", 2)
    assert given.cube.retries == 4  # the rest still from the file


def test_a_bad_cube_value_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FULCRUM_SYNC_CUBE_MAX_CONCURRENCY", "0")
    with pytest.raises(InputError, match="FULCRUM_SYNC_CUBE_MAX_CONCURRENCY: Input should be"):
        load_settings()


def test_the_retry_policy_is_one_frozen_value_the_client_obeys() -> None:
    policy = RetryPolicy(attempts=3, backoff_base=0, jitter=0, budget=9)
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.attempts = 5  # type: ignore[misc]
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)
    url = f"http://127.0.0.1:{closed_port()}"
    src = CubeSource(url, SecretStr(SECRET), client=httpx.Client(timeout=2), policy=policy)
    with pytest.raises(SourceDownError, match="after 3 attempts"):
        src.fetch_series(request())
    assert src.stats().retries == 2 and src.stats().retry_budget == 9
    settings = Settings(cube_retries=2, cube_retry_budget=40, cube_wait_deadline_seconds=30)
    assert retry_policy(settings.cube) == RetryPolicy(attempts=3, deadline=30, budget=40)


def test_the_registry_builds_sources_and_refuses_unknown_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert source_names()[:2] == ("demo", "cube")
    assert source_entry("demo").self_contained and not source_entry("cube").self_contained
    assert isinstance(build_source(Settings(source="demo")), DemoSource)
    with pytest.raises(InputError, match="FULCRUM_SYNC_CUBE_API_URL is not set"):
        build_source(Settings(source="cube"))
    monkeypatch.setenv("FULCRUM_SYNC_SOURCE", "bigquery")
    with pytest.raises(InputError, match="unknown source 'bigquery': expected one of demo, cube"):
        Deps().get_settings()

    built: list[str] = []

    def fake(settings: Settings, **_: object) -> DemoSource:
        built.append(settings.source)
        return DemoSource(1)

    monkeypatch.setitem(registry._REGISTRY, "fake", SourceEntry("fake", fake, True, "a test's"))
    monkeypatch.setenv("FULCRUM_SYNC_SOURCE", "fake")
    assert isinstance(build_source(load_settings()), DemoSource) and built == ["fake"]


def test_no_code_above_the_sources_compares_source_names_and_the_guard_names_none() -> None:
    compared = re.compile(r"""(==|!=)\s*["'](demo|cube)["']|Literal\[\s*["']demo""")
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if compared.search(path.read_text())
    ]
    assert offenders == []
    guard = (PACKAGE / "sources" / "guard.py").read_text()
    code = re.sub(r'""".*?"""', "", guard, flags=re.S)  # docstrings may give an example
    assert "Cube" not in code and "FULCRUM_SYNC" not in code


def test_url_checks_are_written_once() -> None:
    users = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if re.search(r'startswith\(\(\s*"http://"', path.read_text())
    )
    assert users == ["sources/urls.py"]
