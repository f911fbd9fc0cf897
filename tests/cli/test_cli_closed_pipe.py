"""A job whose output reader goes away (``fulcrum-sync sync | head -1``) finishes its work
quietly: no "--- Logging error ---" traceback per log line on stderr, and a record that
says what it did."""

from __future__ import annotations

import json
import subprocess

import pytest
from cli_invoke import fulcrum_argv, json_document, process_env, run_process

pytestmark = pytest.mark.slow


def test_sync_piped_into_head_finishes_without_tracebacks(tmp_path):
    env = process_env(f"sqlite:///{tmp_path / 'state.db'}")
    env["FULCRUM_SYNC_WORKERS"] = "1"
    proc = subprocess.Popen(
        fulcrum_argv("sync", "--grain", "day"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = json.loads(proc.stdout.readline())  # what `| head -1` reads, then it exits
    proc.stdout.close()
    stderr = proc.stderr.read()
    assert proc.wait(timeout=120) == 0, stderr
    assert first["event"] == "sync started"
    assert "Traceback" not in stderr and "Logging error" not in stderr, stderr[:2000]

    # The work was done and recorded: the next run finds every context done.
    again = run_process("sync", "--grain", "day", "--json", env=env)
    assert again.returncode == 0, again.stderr
    report = json_document(again.stdout)
    statuses = {c["status"] for c in report["contexts"]}
    assert statuses == {"skipped"}, statuses
    assert len(report["contexts"]) == 9


@pytest.mark.parametrize("output", [("--log-format", "rich"), ("--json",)], ids=["rich", "json"])
def test_a_summary_printed_after_the_reader_left_keeps_the_runs_exit_code(tmp_path, output):
    """The summary table (rich logs) and the --json document are printed at the end, to a
    reader that has gone: the command ends with the run's own exit code (0), not click's 1
    for a failed flush, and says nothing on stderr about the pipe."""
    env = process_env(f"sqlite:///{tmp_path / 'state.db'}")
    env["FULCRUM_SYNC_WORKERS"] = "1"
    proc = subprocess.Popen(
        fulcrum_argv("sync", "--grain", "day", *output),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # gone before anything is printed: every write meets a closed pipe
    stderr = proc.stderr.read()
    assert proc.wait(timeout=120) == 0, stderr
    assert "Traceback" not in stderr and "Error" not in stderr, stderr[:2000]
    again = run_process("sync", "--grain", "day", "--json", env=env)
    assert again.returncode == 0, again.stderr
    assert {c["status"] for c in json_document(again.stdout)["contexts"]} == {"skipped"}
