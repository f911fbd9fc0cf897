"""`sync --log-format json` writes only JSON lines, each with the fields operators search."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

FIELDS = {
    "time",
    "level",
    "event",
    "run_id",
    "run_key",
    "tenant",
    "metric",
    "grain",
    "counts",
    "duration",
    "error",
}


def test_sync_json_log_lines_parse_and_carry_the_fields(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FULCRUM_SYNC_")}
    env["FULCRUM_SYNC_DATABASE_URL"] = f"sqlite:///{tmp_path / 'logs.db'}"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "fulcrum_sync",
            "sync",
            "--grain",
            "day",
            "--period",
            "2025-08-01",
            "--log-format",
            "json",
        ],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) >= 2
    for line in lines:
        assert set(line) >= FIELDS, line
    synced = [line for line in lines if line["event"] == "context synced"]
    assert synced and all(line["run_key"].startswith("sync:day:2025-08-01:") for line in synced)
    assert all(line["counts"]["rows_stored"] > 0 for line in synced)
    assert lines[-1]["event"] == "sync finished"
    assert lines[-1]["counts"]["contexts"] == len(synced)
