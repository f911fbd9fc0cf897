"""SIGTERM while a sync waits for a lost state database: exit 143, like every other wait.

Caused for real: a private PostgreSQL server (initdb + pg_ctl; FULCRUM_SYNC_TEST_PRIVATE_PG_PORT
picks its port) is stopped under a running ``sync`` subprocess; once the sync logs that it
waits for the database (FULCRUM_SYNC_DATABASE_RETRY_SECONDS=120), it gets SIGTERM. Then we
check the exit code and the seconds to exit, the JSON log lines and the one stderr line, the
run record, and what the next plain run does.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from cli_invoke import Cli
from test_database_outages import (  # noqa: F401  (private_pg is a fixture)
    PrivateServer,
    _keys_of,
    _prepared,
    _runs,
    _start_sync,
    _wait_for_keys,
    private_pg,
)
from test_truthful_runs import digest

from fulcrum_sync.store.retry import STOP_GRACE_SECONDS

SYNC = ["sync", "--grain", "day", "--period", "2025-09-30"]


@pytest.fixture
def server(request: pytest.FixtureRequest) -> PrivateServer:
    """test_database_outages' private server (one per module: initdb once)."""
    found: PrivateServer = request.getfixturevalue("private_pg")
    return found


def _lines_until(
    proc: subprocess.Popen[str], wanted: str, timeout: float = 120
) -> tuple[list[dict[str, Any]], threading.Thread, queue.Queue[str | None]]:
    """Read the sync's stdout (JSON lines) until one's event contains ``wanted``; the rest
    keeps being read into the returned queue (None at the end)."""
    rest: queue.Queue[str | None] = queue.Queue()
    seen: list[dict[str, Any]] = []
    found = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            if not found.is_set():
                line = json.loads(raw)
                seen.append(line)
                if wanted in line["event"]:
                    found.set()
            else:
                rest.put(raw)
        rest.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert found.wait(timeout), f"no {wanted!r} line: {seen[-3:]}"
    return seen, reader, rest


def _drain(rest: queue.Queue[str | None]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while (raw := rest.get(timeout=60)) is not None:
        out.append(json.loads(raw))
    return out


def _sigterm_while_waiting(
    pg: PrivateServer, tmp_path: Path, *, back: bool
) -> tuple[str, str, int, float, list[dict[str, Any]], str]:
    url = pg.new_database()
    clean = _prepared(url, tmp_path, metrics=24)
    proc = _start_sync(url, tmp_path, "--workers", "2", FULCRUM_SYNC_DATABASE_RETRY_SECONDS="120")
    _wait_for_keys(url, proc, 3)
    pg.stop()
    try:
        before, reader, rest = _lines_until(proc, "the state database is unreachable")
        proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        if back:
            pg.start()  # back within the grace the run's record gets
        code = proc.wait(timeout=120)
        seconds = time.monotonic() - signalled
        after = _drain(rest)
        reader.join(timeout=10)
        assert proc.stderr is not None
        err = proc.stderr.read()
    finally:
        if not back:
            pg.start()
    return url, clean, code, seconds, before + after, err


@pytest.mark.slow
def test_sigterm_during_a_database_wait_exits_143_and_records_interrupted_when_it_is_back(
    server: PrivateServer, tmp_path: Path
) -> None:
    url, clean, code, seconds, lines, err = _sigterm_while_waiting(server, tmp_path, back=True)
    assert code == 143, err
    assert seconds < STOP_GRACE_SECONDS + 20, seconds  # not the 120 s bound
    assert "Traceback" not in err
    stopped = [e for e in lines if "stopped while waiting for the state database" in e["event"]]
    assert len(stopped) == 1 and stopped[0]["level"] == "warning", lines[-5:]
    finished = lines[-1]
    assert finished["event"] == "sync finished" and finished["outcome"] == "interrupted"
    run_id = finished["run_id"]
    assert _runs(url)[run_id]["outcome"] == "interrupted"
    assert "running" not in _keys_of(url, run_id)

    again = Cli.on(url)(*SYNC)  # the next plain run finishes the rest
    assert again.exit_code == 0, again.output
    assert digest(url) == digest(clean)
    print(f"\nSIGTERM in a database wait, back: exit {code} {seconds:.1f} s after the signal")
    print(stopped[0]["event"])


@pytest.mark.slow
def test_sigterm_during_a_database_wait_exits_143_when_it_stays_away(
    server: PrivateServer, tmp_path: Path
) -> None:
    url, clean, code, seconds, lines, err = _sigterm_while_waiting(server, tmp_path, back=False)
    assert code == 143, err
    assert seconds < STOP_GRACE_SECONDS + 20, seconds
    assert err.count("\n") <= 1 and "Traceback" not in err, err
    run_id = lines[0]["run_id"]
    unrecorded = [e for e in lines if e["event"].startswith(f"run {run_id} not recorded")]
    assert len(unrecorded) == 1 and "closes it as abandoned" in unrecorded[0]["event"], lines[-3:]
    assert _runs(url)[run_id]["outcome"] in ("running", "abandoned")  # unrecorded: DB away
    again = Cli.on(url)(*SYNC)  # the next run closes it and finishes the rest
    assert again.exit_code == 0, again.output
    assert _runs(url)[run_id]["outcome"] == "abandoned"
    assert digest(url) == digest(clean)
    print(f"\nSIGTERM in a database wait, away: exit {code} {seconds:.1f} s after; {err.strip()}")
    print(unrecorded[0]["event"])
    print(json.dumps(lines[-1])[:600])
