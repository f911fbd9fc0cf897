"""Source errors name their endpoint (never its credentials); waits wake on the stop event;
the 401/403 line and the 429 warning carry the context's fields."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest
from cube_server import SECRET, FakeCube, Reply
from pydantic import SecretStr
from test_cli_sync_cube import CUBES, closed_port, cube_env, daily_data, write_catalog
from test_source_cube import request
from typer.testing import CliRunner

from fulcrum_sync.cli import app
from fulcrum_sync.domain import RefusedError, SourceDownError, StopRequested
from fulcrum_sync.sources import CubeSource, RetryPolicy, SourceGuard

runner = CliRunner()
PASSWORD = "hunter2-url-password"


def test_errors_start_with_the_endpoint_without_its_credentials() -> None:
    fake = FakeCube(daily_data, cubes=CUBES, secret="another-secret-the-server-knows-000")
    with fake.serve() as url:
        port = url.rsplit(":", 1)[1]
        src = CubeSource(
            f"http://reader:{PASSWORD}@127.0.0.1:{port}/cubejs-api/v1",
            SecretStr(SECRET),
            client=httpx.Client(timeout=5),
            close_client=True,
        )
        try:
            with pytest.raises(RefusedError) as refused:
                src.fetch_series(request())
        finally:
            src.close()
    message = str(refused.value)
    assert message.startswith(f"Cube at http://127.0.0.1:{port}: acme::new_revenue (day): ")
    assert refused.value.endpoint == f"http://127.0.0.1:{port}"
    assert PASSWORD not in message and "reader" not in message


def test_a_down_cube_error_carries_its_endpoint() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    src = CubeSource(
        url, SecretStr(SECRET), client=httpx.Client(timeout=5), policy=RetryPolicy(attempts=1)
    )
    with pytest.raises(SourceDownError) as down:
        src.fetch_series(request())
    assert str(down.value).startswith(f"Cube at {url}: ")
    assert down.value.endpoint == url


def test_a_429_pause_wakes_on_the_stop_event_and_sends_nothing_more() -> None:
    fake = FakeCube(daily_data, cubes=CUBES)
    fake.script.append(Reply(429, {"error": "Too Many Requests"}, headers={"Retry-After": "60"}))
    stop = threading.Event()
    src = CubeSource(
        "http://cube.test",
        SecretStr(SECRET),
        client=httpx.Client(transport=fake.transport()),
        guard=SourceGuard("Cube at http://cube.test", stop=stop),
    )
    errors: list[BaseException] = []

    def fetch() -> None:
        try:
            src.fetch_series(request())
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=fetch)
    worker.start()
    deadline = time.monotonic() + 30
    while src.stats().throttled == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    worker.join(5)
    assert not worker.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], StopRequested)
    assert len(fake.requests) == 1


def test_a_retry_backoff_wakes_on_the_stop_event() -> None:
    stop = threading.Event()
    guard = SourceGuard("Cube at http://cube.test", stop=stop)
    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    with pytest.raises(StopRequested):
        guard.backoff(60)
    assert time.monotonic() - started < 5
    with pytest.raises(StopRequested), guard.slot():
        pass  # nothing is admitted once stopped


def test_the_refused_line_and_the_429_warning_carry_the_context_fields(
    sqlite_url: str, tmp_path: Path
) -> None:
    catalog = write_catalog(tmp_path / "c.yaml", [], metrics=("a", "b"))
    fake = FakeCube(daily_data, cubes=CUBES, secret="another-secret-the-server-knows-000")
    fake.script.append(Reply(429, {"error": "slow down"}, headers={"Retry-After": "0.2"}))
    with fake.serve() as url:
        env = cube_env(sqlite_url, url)
        assert runner.invoke(app, ["catalog", "load", str(catalog)], env=env).exit_code == 0
        result = runner.invoke(app, ["sync", "--grain", "day", "--period", "2025-09-30"], env=env)
    assert result.exit_code == 2, result.output
    lines = [json.loads(x) for x in result.stdout.splitlines() if x.startswith("{")]
    [throttled] = [x for x in lines if x["event"] == "source throttled"]
    assert throttled["level"] == "warning" and throttled["wait_seconds"] == 0.2
    refused = [x for x in lines if x["event"] == "source refused the credentials"]
    assert refused
    for line in [throttled, *refused]:
        assert line["endpoint"] == url
        assert all(line[k] for k in ("run_id", "run_key", "tenant", "metric", "grain")), line
    assert refused[0]["error"].startswith(f"Cube at {url}: acme::")
