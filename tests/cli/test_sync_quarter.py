"""The quarter grain end to end on the demo default: sync a quarter, its patterns, status."""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner

from fulcrum_sync.catalog import active_contexts, demo_catalog
from fulcrum_sync.cli import app
from fulcrum_sync.domain import Grain

runner = CliRunner()
TODAY = "2026-10-05"  # the last complete quarter is 2026-Q3 (history from 2025-07-01)


def invoke(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env={**env, "FULCRUM_SYNC_TODAY": TODAY})
    return result.exit_code, result.output


def test_a_quarter_syncs_with_its_patterns_and_shows_in_status(cli_env: dict[str, str]) -> None:
    expected = sorted(c.context.to_string() for c in active_contexts(demo_catalog(), Grain.QUARTER))
    assert len(expected) >= 3
    code, out = invoke(cli_env, "sync", "--grain", "quarterly", "--period", "2026-Q3", "--json")
    assert code == 0, out
    report: dict[str, Any] = json.loads(out)
    contexts = report["contexts"]
    assert sorted(c["context"] for c in contexts) == expected
    for c in contexts:
        assert c["status"] == "succeeded", c
        assert c["run_key"] == f"sync:quarter:2026-07-01:{c['context']}"
        assert c["window"] == "2025-07-01..2026-09-30"  # FULL, from the history start
        assert c["patterns"] and all(p["status"] == "succeeded" for p in c["patterns"])
        assert "forecasting" not in {p["pattern"] for p in c["patterns"]}  # no coarser span

    code, out = invoke(cli_env, "sync", "--grain", "quarter", "--period", "2026-08-17")
    assert code == 0 and "already done" in out, out  # a date inside names the same quarter

    code, out = invoke(cli_env, "status", "--grain", "quarter", "--json")
    assert code == 0, out
    (fresh,) = json.loads(out)["freshness"]
    assert fresh["grain"] == "quarter" and fresh["expected_period"] == "2026-07-01"
    assert fresh["up_to_date"] == fresh["contexts"] == len(expected)


def test_a_quarter_not_over_yet_is_refused(cli_env: dict[str, str]) -> None:
    code, out = invoke(cli_env, "sync", "--grain", "quarter", "--period", "2026-Q4")
    assert code == 2
    assert "2026-Q4 is not over yet: the last complete quarter is 2026-Q3" in out
