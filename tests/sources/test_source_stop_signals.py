"""SIGTERM while the Cube client waits: a 429 pause, Continue-wait polling, a Cube that is down.

Each case runs ``sync`` as a real process against tests/cube_server.py (or a closed port),
waits for the wait to be under way (a JSON log line, or requests at the server), sends
SIGTERM, and checks what an operator would: exit 143 within 5 s, no request sent once the
process said it received the signal (counted at the server), no key left ``running``, the
run recorded ``interrupted``; and the one plain run after it finishes the work.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import pytest
import yaml
from cli_invoke import fulcrum_argv, process_env, run_process
from cube_server import SECRET, FakeCube, Reply
from sqlalchemy import select
from test_cli_sync_cube import CUBES, closed_port, daily_data

from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import open_engine

PERIOD = "2025-09-30"
SYNC = ["sync", "--grain", "day", "--period", PERIOD, "--no-patterns", "--workers", "4"]
METRICS = ("a", "b", "c", "d", "e", "f")
EXIT_BOUND = 5.0  # seconds from SIGTERM to exit, as the issue asks


def write_catalog(path: Path, dimensions: bool = False) -> Path:
    """Six metrics on one cube; with ``dimensions`` each has ``region`` (a multi request)."""
    dims = [{"dimension_id": "region", "member": "orders.region"}] if dimensions else []
    catalog = {
        "tenants": [
            {
                "tenant_id": 7,
                "identifier": "acme",
                "metrics": [
                    {
                        "metric_id": m,
                        "measure": "orders.total_amount",
                        "time_dimension": "orders.created_at",
                        "dimensions": dims,
                        "grains": ["day"],
                    }
                    for m in METRICS
                ],
            }
        ]
    }
    path.write_text(yaml.safe_dump(catalog))
    return path


def cube_process_env(db_url: str, api_url: str, **extra: str) -> dict[str, str]:
    env = process_env(db_url)
    env.update(
        FULCRUM_SYNC_SOURCE="cube",
        FULCRUM_SYNC_CUBE_API_URL=api_url,
        FULCRUM_SYNC_CUBE_API_SECRET=SECRET,
        FULCRUM_SYNC_CUBE_TIMEOUT_SECONDS="5",
        **extra,
    )
    return env


class Watched:
    """A CLI process whose stdout (JSON lines) and stderr are read as they come, timed."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.proc = subprocess.Popen(
            fulcrum_argv(*args),
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[dict[str, Any]] = []
        self.errors: list[tuple[float, str]] = []  # (monotonic when read, line)
        self._cond = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read_out, daemon=True),
            threading.Thread(target=self._read_err, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            if raw.startswith("{"):
                with self._cond:
                    self.lines.append(json.loads(raw))
                    self._cond.notify_all()

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            with self._cond:
                self.errors.append((time.monotonic(), raw))
                self._cond.notify_all()

    def wait_for(self, found: Callable[[], bool], what: str, bound: float = 120) -> None:
        """Wait (bounded, generously) until ``found()``; fail naming ``what``."""
        deadline = time.monotonic() + bound
        with self._cond:
            while not found():
                if self.proc.poll() is not None:
                    pytest.fail(f"the process ended ({self.proc.returncode}) before {what}")
                if time.monotonic() > deadline:
                    pytest.fail(f"no {what} within {bound}s")
                self._cond.wait(0.05)

    def event(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("event") == name]

    def terminate(self) -> tuple[float, float]:
        """SIGTERM; return (when sent, when the process said it received it), monotonic."""
        sent = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.wait_for(lambda: any("Received SIGTERM" in e for _, e in self.errors), "echo")
        heard = next(at for at, e in self.errors if "Received SIGTERM" in e)
        return sent, heard

    def finish(self) -> tuple[int, float]:
        """Wait for the exit; return the code and when it ended (monotonic)."""
        code = self.proc.wait(timeout=60)
        ended = time.monotonic()
        for reader in self._readers:
            reader.join(10)
        return code, ended

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def prepare(db_url: str, api_url: str, tmp_path: Path, dimensions: bool = False) -> None:
    env = cube_process_env(db_url, api_url)
    catalog = write_catalog(tmp_path / "catalog.yaml", dimensions)
    for args in (["catalog", "load", str(catalog)], ["discover", "--grain", "day"]):
        done = run_process(*args, env=env)
        assert done.returncode == 0, done.stderr


def run_state(db_url: str) -> tuple[list[str], list[str]]:
    """The sync runs' outcomes and every run key's status."""
    engine = open_engine(db_url)
    try:
        with engine.connect() as conn:
            outcomes = [
                r[0]
                for r in conn.execute(select(t.runs.c.outcome).where(t.runs.c.command == "sync"))
            ]
            keys = [r[0] for r in conn.execute(select(t.run_items.c.status))]
    finally:
        engine.dispose()
    return outcomes, keys


def check_stopped(proc: Watched, fake: FakeCube | None, db_url: str) -> dict[str, float]:
    """SIGTERM now; assert exit 143 within the bound, nothing sent after, keys released."""
    before = len(fake.requests) if fake else 0
    sent, heard = proc.terminate()
    code, ended = proc.finish()
    figures = {"seconds_to_exit": round(ended - sent, 2)}
    assert code == 143, proc.errors
    assert ended - sent < EXIT_BOUND
    if fake is not None:
        after_heard = [r for r in fake.requests if r.at > heard]
        figures["requests_after_signal"] = len(fake.requests) - before
        figures["requests_after_heard"] = len(after_heard)
        assert after_heard == []
    finished = proc.event("sync finished")[-1]
    assert finished["outcome"] == "interrupted"
    outcomes, keys = run_state(db_url)
    assert outcomes == ["interrupted"]
    assert "running" not in keys and "failed" not in keys
    print("figures:", figures)
    return figures


def plain_run_finishes(db_url: str, api_url: str, tmp_path: Path) -> None:
    env = cube_process_env(db_url, api_url)
    done = subprocess.run(
        fulcrum_argv(*SYNC), env=env, capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stdout[-2000:]
    _, keys = run_state(db_url)
    assert set(keys) == {"succeeded"} and len(keys) == len(METRICS)


@pytest.mark.slow
def test_sigterm_during_a_60s_429_pause_exits_143_at_once(sqlite_url: str, tmp_path: Path) -> None:
    fake = FakeCube(daily_data, cubes=CUBES)
    with fake.serve() as url:
        prepare(sqlite_url, url, tmp_path)
        fake.script.append(
            Reply(429, {"error": "Too Many Requests"}, headers={"Retry-After": "60"})
        )
        with Watched(SYNC, cube_process_env(sqlite_url, url), tmp_path) as proc:
            proc.wait_for(lambda: bool(proc.event("source throttled")), "429 warning")
            check_stopped(proc, fake, sqlite_url)
            [warning] = proc.event("source throttled")  # one per pause, not one per worker
            assert warning["level"] == "warning" and warning["wait_seconds"] == 60
            assert warning["endpoint"] == url
            assert all(warning[k] for k in ("run_id", "run_key", "tenant", "metric", "grain"))
        assert len(fake.requests) == 1  # the 429; nothing during the pause
        plain_run_finishes(sqlite_url, url, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("dimensions", [False, True], ids=["one-query", "multi-request"])
def test_sigterm_during_continue_wait_polling_exits_143_at_once(
    sqlite_url: str, tmp_path: Path, dimensions: bool
) -> None:
    fake = FakeCube(daily_data, cubes=CUBES)
    with fake.serve() as url:
        prepare(sqlite_url, url, tmp_path, dimensions)
        fake.script.extend(Reply.continue_wait() for _ in range(100_000))
        with Watched(SYNC, cube_process_env(sqlite_url, url), tmp_path) as proc:
            proc.wait_for(lambda: len(fake.requests) >= 12, "Continue-wait polls")
            loads = [r for r in fake.requests if r.path.endswith("/load")]
            assert all(r.is_multi == dimensions for r in loads)  # issue 26: base + region
            check_stopped(proc, fake, sqlite_url)
        fake.script.clear()
        plain_run_finishes(sqlite_url, url, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("down", ["closed port", "dropping connections"])
def test_sigterm_while_retrying_a_down_cube_exits_143_not_3(
    sqlite_url: str, tmp_path: Path, down: str
) -> None:
    fake = FakeCube(daily_data, cubes=CUBES)
    with fake.serve() as served:
        prepare(sqlite_url, served, tmp_path)
        url = f"http://127.0.0.1:{closed_port()}" if down == "closed port" else served
        fake.down = True  # drops every connection unanswered (counted)
        env = cube_process_env(sqlite_url, url, FULCRUM_SYNC_CUBE_RETRIES="8")
        with Watched(SYNC, env, tmp_path) as proc:
            retried = lambda: any("retry 2/8" in line["event"] for line in proc.lines)  # noqa: E731
            proc.wait_for(retried, "a second retry")
            check_stopped(proc, fake if down != "closed port" else None, sqlite_url)
            assert not proc.event("source down")
        fake.down = False
        plain_run_finishes(sqlite_url, served, tmp_path)
