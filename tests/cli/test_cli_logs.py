"""`sync --log-format json` writes only JSON lines, each with the fields operators search."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from cli_invoke import Cli

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
    started = lines[0]  # written once the run is recorded: a killed job's logs still name it
    assert started["event"] == "sync started" and started["run_id"] == lines[-1]["run_id"]
    assert (started["grain"], started["period"]) == ("day", "2025-08-01")
    assert started["counts"] == {"contexts": len(synced)}
    host, pid, run = started["owner"].split(":")
    assert host and int(pid) > 0 and started["run_id"].startswith(run)
    assert [line["event"] for line in lines].count("sync started") == 1


def test_sync_started_reads_in_the_rich_log_format(sqlite_cli: Cli):
    args = ("-v", "sync", "--grain", "day", "--period", "2025-08-01", "--metric", "orders")
    ran = sqlite_cli(*args, env={"COLUMNS": "400"})  # one event a line
    assert ran.exit_code == 0, ran.output
    started = [line for line in ran.stderr.splitlines() if "sync started" in line]
    assert len(started) == 1, ran.stderr
    # The fields follow the event, the run id first (a narrow terminal cuts the line's end).
    run_id = ran.stderr.split("run_id=", 1)[1].split()[0]
    assert started[0].split("sync started", 1)[1].split()[0] == f"run_id={run_id}"
