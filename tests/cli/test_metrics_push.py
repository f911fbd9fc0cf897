"""Job commands push their metrics to a real Prometheus Pushgateway as they end.

The Pushgateway is Debian's ``prometheus-pushgateway``, started once per session on a free
local port; a machine without it fails these tests (``.ci/run`` installs it).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cli_invoke import Cli, demo_env
from sqlalchemy import func, select

from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import open_engine

LAST_SUCCESS = "fulcrum_sync_last_success_timestamp_seconds"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def pushgateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a running Pushgateway (stopped at the end of the session)."""
    binary = shutil.which("prometheus-pushgateway")
    if binary is None:
        pytest.fail(
            "prometheus-pushgateway is not installed (apt-get install prometheus-pushgateway)"
        )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("pushgateway") / "pushgateway.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [binary, f"--web.listen-address=127.0.0.1:{port}", "--web.enable-admin-api"],
            stdout=out,
            stderr=out,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Pushgateway did not start: {Path(log).read_text()[-2000:]}")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def gateway(pushgateway: str) -> Iterator[str]:
    """The Pushgateway, emptied before and after the test."""
    httpx.put(f"{pushgateway}/api/v1/admin/wipe", timeout=10).raise_for_status()
    yield pushgateway
    httpx.put(f"{pushgateway}/api/v1/admin/wipe", timeout=10).raise_for_status()


def scrape(url: str) -> str:
    response = httpx.get(f"{url}/metrics", timeout=10)
    response.raise_for_status()
    return response.text


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the sample ``name`` carrying (at least) ``labels``."""
    for line in text.splitlines():
        match = re.match(rf"^{name}\{{(.*)\}} (\S+)$", line)
        if match and all(f'{k}="{v}"' in match.group(1) for k, v in labels.items()):
            return float(match.group(2))
    return None


@pytest.fixture
def demo(sqlite_url: str) -> Cli:
    """The CLI on the demo source and a SQLite file: the Pushgateway is the subject here."""
    return Cli.demo(sqlite_url)


def test_a_sync_pushes_its_metrics_and_a_failed_run_keeps_the_last_success(
    demo: Cli, gateway: str
) -> None:
    cli = demo.but(env={"FULCRUM_SYNC_PUSHGATEWAY_URL": gateway})
    before = time.time()
    ok = cli("sync", "--grain", "day", "--tenant", "acme")
    assert ok.exit_code == 0, ok.output
    text = scrape(gateway)
    key = {"command": "sync", "grain": "day", "job": "fulcrum-sync"}
    assert re.search(
        rf'^{LAST_SUCCESS}\{{command="sync",grain="day",(instance="",)?job="fulcrum-sync"\}} ',
        text,
        re.M,
    ), text
    success = sample(text, LAST_SUCCESS, **key)
    assert success is not None and before <= success <= time.time()
    assert (sample(text, "fulcrum_sync_duration_seconds", **key) or 0) > 0
    assert sample(text, "fulcrum_sync_contexts", outcome="succeeded", **key) == 3
    assert (sample(text, "fulcrum_sync_rows_stored", **key) or 0) > 0
    assert sample(text, "fulcrum_sync_last_run_failed", **key) == 0
    assert (sample(text, "fulcrum_sync_contexts_behind", **key) or 0) > 0  # not acme's: behind

    # The same job against a Cube nobody listens on: exit 3, pushed as failed.
    failing = {
        "FULCRUM_SYNC_SOURCE": "cube",
        "FULCRUM_SYNC_CUBE_API_URL": f"http://127.0.0.1:{free_port()}",
        "FULCRUM_SYNC_CUBE_API_SECRET": "s" * 40,
        "FULCRUM_SYNC_CUBE_RETRIES": "0",
        "FULCRUM_SYNC_CUBE_TIMEOUT_SECONDS": "2",
    }
    failed = cli("sync", "--grain", "day", "--tenant", "acme", "--force", env=failing)
    assert failed.exit_code == 3, failed.output
    text = scrape(gateway)
    assert sample(text, LAST_SUCCESS, **key) == success  # unchanged by the failure
    assert sample(text, "fulcrum_sync_last_run_failed", **key) == 1
    assert sample(text, "fulcrum_sync_exit_code", **key) == 3
    assert (sample(text, "fulcrum_sync_source_requests", **key) or 0) >= 1


def test_every_job_command_pushes_under_its_own_group(demo: Cli, gateway: str) -> None:
    cli = demo.but(env={"FULCRUM_SYNC_PUSHGATEWAY_URL": gateway})
    assert cli("discover").exit_code == 0
    assert cli("sync", "-g", "day", "-t", "acme", "--no-patterns").exit_code == 0
    assert cli("patterns", "-g", "day", "-t", "acme").exit_code == 0
    assert cli("cache-load", "-g", "day", "-t", "acme").exit_code == 0
    assert cli("state", "prune", "--keep-days", "30", "--yes").exit_code == 0
    assert cli("verify", "-g", "day", "-t", "acme").exit_code == 0
    assert cli("status").exit_code in (0, 1)  # not a job: pushes nothing
    bad = cli("backfill", "-g", "day", "--start", "2025-07-10", "--end", "2025-07-01")
    assert bad.exit_code == 2
    text = scrape(gateway)
    for command, grain in [
        ("discover", "all"),
        ("sync", "day"),
        ("patterns", "day"),
        ("cache-load", "day"),
        ("state prune", "all"),
        ("verify", "day"),
    ]:
        assert sample(text, LAST_SUCCESS, command=command, grain=grain) is not None, command
    assert sample(text, "fulcrum_sync_cache_tables_loaded", command="cache-load") == 3
    assert sample(text, "fulcrum_sync_contexts", command="verify", outcome="equal") == 3
    assert sample(text, "fulcrum_sync_contexts", command="verify", outcome="differs") == 0
    assert sample(text, "fulcrum_sync_exit_code", command="backfill", grain="day") == 2
    assert sample(text, LAST_SUCCESS, command="backfill") is None
    assert 'command="status"' not in text
    assert "pod" not in text and socket.gethostname() not in text


def test_a_push_that_fails_is_a_warning_and_never_changes_the_exit_code(
    demo: Cli,
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    env = {
        "FULCRUM_SYNC_PUSHGATEWAY_URL": dead,
        "FULCRUM_SYNC_LOG_FORMAT": "json",
    }
    started = time.monotonic()
    result = demo("sync", "--grain", "day", "--tenant", "acme", "--no-patterns", env=env)
    assert result.exit_code == 0, result.output
    assert "could not push metrics to the Pushgateway" in result.output
    assert time.monotonic() - started < 120  # bounded: a refused connection does not hang


@pytest.mark.slow
def test_a_job_stopped_by_sigterm_still_pushes(
    sqlite_url: str, gateway: str, tmp_path: Path
) -> None:
    env = {**os.environ, **demo_env(sqlite_url), "FULCRUM_SYNC_PUSHGATEWAY_URL": gateway}
    env["FULCRUM_SYNC_LOG_FORMAT"] = "json"
    args = ("backfill", "-g", "day", "--start", "2025-07-01", "--end", "2025-12-31", "-w", "1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "fulcrum_sync", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    engine = open_engine(sqlite_url, migrate=False)
    try:
        deadline = time.monotonic() + 300
        done = select(func.count()).where(t.run_items.c.status == "succeeded")
        while True:  # wait until the backfill has done some keys
            with contextlib.suppress(Exception), engine.connect() as conn:
                if conn.execute(done).scalar_one() >= 2:
                    break
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the backfill did no key in 300 s"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)
    finally:
        engine.dispose()
    assert proc.returncode == 143
    text = scrape(gateway)
    key = {"command": "backfill", "grain": "day"}
    assert sample(text, "fulcrum_sync_exit_code", **key) == 143
    assert sample(text, "fulcrum_sync_last_run_failed", **key) == 1
    assert sample(text, LAST_SUCCESS, **key) is None
    assert (sample(text, "fulcrum_sync_contexts", outcome="succeeded", **key) or 0) >= 1
