"""Smoke test of ``benchmarks/processes.py`` (issue 26) at a tiny size: 1 and 2 real ``sync``
processes on one PostgreSQL database. Timings are not asserted; the report's shape is, and
the benchmark's own check that every run key succeeded exactly once, split between both."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PG_TEST = os.environ.get("FULCRUM_SYNC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.mark.slow
@pytest.mark.skipif(PG_TEST == "skip", reason="needs PostgreSQL")
def test_two_processes_report_each_ones_cpu_end_and_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FULCRUM_SYNC_BENCH_PG", PG_TEST)
    monkeypatch.syspath_prepend(str(ROOT))
    if "benchmarks" in sys.modules and not hasattr(sys.modules["benchmarks"], "__path__"):
        del sys.modules["benchmarks"]
    from benchmarks import processes

    out = processes.measure(4)
    one, two = out["figures"]["1"], out["figures"]["2"]
    assert one["keys"] == two["keys"] == 4 * 7  # a sync key and 6 pattern keys per context
    assert one["sync_keys"] == two["sync_keys"] == 4 and two["runs"] == 2
    assert len(two["cpu_per_process_s"]) == len(two["end_per_process_s"]) == 2
    assert max(two["end_per_process_s"]) <= two["wall_s"]
    assert sum(two["contexts_per_process"]) == 4
    for fig in (one, two):
        assert fig["statements_per_context"] is None or fig["statements_per_context"] > 0
    assert two["wall_ratio"] > 0 and two["critical_cpu_ratio"] > 0
    # The processes ran the checkout's compiled modules, as an installed package's are.
    for module in ("cli/__init__.py", "services/run/sync_run.py", "patterns/forecasting.py"):
        source = ROOT / "fulcrum_sync" / module
        assert Path(importlib.util.cache_from_source(str(source))).is_file(), module
