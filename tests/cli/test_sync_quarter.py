"""The quarter grain end to end on the demo default: sync a quarter, its patterns, status."""

from __future__ import annotations

from typing import Any

from cli_invoke import Cli

from fulcrum_sync.catalog import active_contexts, demo_catalog
from fulcrum_sync.domain import Grain

TODAY = "2026-10-05"  # the last complete quarter is 2026-Q3 (history from 2025-07-01)


def test_a_quarter_syncs_with_its_patterns_and_shows_in_status(cli: Cli) -> None:
    expected = sorted(c.context.to_string() for c in active_contexts(demo_catalog(), Grain.QUARTER))
    assert len(expected) >= 3
    ran = cli("sync", "--grain", "quarterly", "--period", "2026-Q3", "--json", today=TODAY)
    assert ran.exit_code == 0, ran.output
    report: dict[str, Any] = ran.json()
    contexts = report["contexts"]
    assert sorted(c["context"] for c in contexts) == expected
    for c in contexts:
        assert c["status"] == "succeeded", c
        assert c["run_key"] == f"sync:quarter:2026-07-01:{c['context']}"
        assert c["window"] == "2025-07-01..2026-09-30"  # FULL, from the history start
        assert c["patterns"] and all(p["status"] == "succeeded" for p in c["patterns"])
        assert "forecasting" not in {p["pattern"] for p in c["patterns"]}  # no coarser span

    ran = cli("sync", "--grain", "quarter", "--period", "2026-08-17", today=TODAY)
    assert ran.exit_code == 0 and "already done" in ran.output, ran.output  # the same quarter

    ran = cli("status", "--grain", "quarter", "--json", today=TODAY)
    assert ran.exit_code == 0, ran.output
    (fresh,) = ran.json()["freshness"]
    assert fresh["grain"] == "quarter" and fresh["expected_period"] == "2026-07-01"
    assert fresh["up_to_date"] == fresh["contexts"] == len(expected)


def test_a_quarter_not_over_yet_is_refused(cli: Cli) -> None:
    ran = cli("sync", "--grain", "quarter", "--period", "2026-Q4", today=TODAY)
    assert ran.exit_code == 2
    assert "2026-Q4 is not over yet: the last complete quarter is 2026-Q3" in ran.output
