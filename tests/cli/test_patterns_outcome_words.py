"""`patterns run` says how each pattern ended in the outcome words of domain/outcomes.py,
the same in `--json`, in its JSON log lines and in its text: never `done` or `busy`."""

from __future__ import annotations

import json

from cli_invoke import Cli

from fulcrum_sync.domain import PatternStatus, SkipReason

ARGS = ["patterns", "run", "--grain", "day", "--period", "2025-09-30", "--tenant", "acme"]
WORDS = {s.value for s in PatternStatus}


def test_a_second_patterns_run_says_skipped_already_done_in_json_logs_and_text(
    sqlite_url: str,
) -> None:
    cli = Cli.on(sqlite_url, FULCRUM_SYNC_LOG_FORMAT="rich", COLUMNS="200")
    sync = ["sync", "--grain", "day", "--period", "2025-09-30", "--tenant", "acme"]
    assert cli(*sync, "--no-patterns").exit_code == 0
    first = cli(*ARGS, "--json")
    assert first.exit_code == 0, first.output
    ran = [p for c in json.loads(first.stdout)["contexts"] for p in c["patterns"]]
    assert ran and {p["status"] for p in ran} <= WORDS

    again = cli(*ARGS, "--json")
    assert again.exit_code == 0, again.output
    document = json.loads(again.stdout)
    skipped = [p for c in document["contexts"] for p in c["patterns"]]
    assert len(skipped) == len(ran)
    assert {(p["status"], p["skip_reason"]) for p in skipped} == {
        (PatternStatus.SKIPPED.value, SkipReason.ALREADY_DONE.value)
    }
    assert {c["status"] for c in document["contexts"]} == {"skipped"}  # as sync says it

    logged = cli(*ARGS, env={"FULCRUM_SYNC_LOG_FORMAT": "json"})
    assert logged.exit_code == 0, logged.output
    lines = [json.loads(x) for x in logged.stdout.splitlines() if x.startswith("{")]
    finished = lines[-1]
    assert finished["event"] == "patterns finished"
    assert finished["counts"] == {"skipped": len(ran)}

    text = cli(*ARGS)
    assert text.exit_code == 0, text.output
    assert f"{len(ran)} skipped (already done)" in text.stdout
    for output in (again.stdout, logged.stdout, text.stdout):
        assert '"done"' not in output and '"busy"' not in output
        assert " done " not in output.replace("already done", "")
