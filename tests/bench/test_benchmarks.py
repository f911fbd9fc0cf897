"""Smoke test of ``benchmarks/``: every measurement runs at a tiny size and reports its shape.

Timings are not asserted (speed is judged by ``python benchmarks/run.py``, not by tests);
only that each benchmark runs, and that the report is one JSON object whose figures carry
a value, a unit and, where there is a target, pass/fail.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Like conftest: PostgreSQL unless FULCRUM_SYNC_TEST_PG=skip (then the PG figures are None).
PG_TEST = os.environ.get("FULCRUM_SYNC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_UNREACHABLE = "postgresql://postgres@127.0.0.1:1/postgres"
FIGURE_KEYS = {"key", "label", "value", "unit", "target", "passed", "note"}


def _bench(name: str) -> ModuleType:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module(f"benchmarks.{name}")


def _pg_env() -> dict[str, str]:
    return {"FULCRUM_SYNC_BENCH_PG": PG_UNREACHABLE if PG_TEST == "skip" else PG_TEST}


@pytest.fixture(scope="module")
def report() -> Any:
    """Every benchmark at the tiny size, as ``run.py`` would report it."""
    run = _bench("run")
    common = _bench("common")
    with pytest.MonkeyPatch.context() as mp:
        for key, value in _pg_env().items():
            mp.setenv(key, value)
        return run.run_all(common.TINY)


def _figures(report: dict[str, Any], name: str) -> dict[str, dict[str, Any]]:
    bench = report["benchmarks"][name]
    assert bench["error"] is None, bench["error"]
    return {f["key"]: f for f in bench["figures"]}


@pytest.mark.slow
def test_report_is_one_json_object_with_every_benchmark(report: dict[str, Any]) -> None:
    assert json.loads(json.dumps(report)) == report
    assert set(report["benchmarks"]) == {
        "cli_sync",
        "cli_jobs",
        "orchestration",
        "upsert",
        "concurrency",
        "backfill",
        "cli_start",
    }
    assert {"nproc", "ram_gb", "python", "postgresql", "load_average"} <= set(report["machine"])
    summary = report["summary"]
    assert summary["errors"] == []
    assert summary["targets"] >= 9
    assert summary["all_passed"] == (not summary["missed"])
    for bench in report["benchmarks"].values():
        for fig in bench["figures"]:
            assert set(fig) == FIGURE_KEYS
            assert fig["passed"] in (True, False, None)
            assert (fig["target"] is None) == (fig["passed"] is None)


@pytest.mark.slow
def test_orchestration_reports_overhead_floor_and_memory(report: dict[str, Any]) -> None:
    figs = _figures(report, "orchestration")
    for key in (
        "incremental_ms_per_context",
        "full_ms_per_context",
        "bookkeeping_ms_per_key",
        "raw_sql_ms_per_key",
        "peak_rss_10",
        "peak_rss_20",
        "rss_growth",
    ):
        assert figs[key]["value"] > 0, key
    details = report["benchmarks"]["orchestration"]["details"]
    assert details["runs"]["full"]["sync_types"] == ["FULL"]
    assert details["runs"]["incremental"]["sync_types"] == ["INCREMENTAL"]
    assert sum(details["profile"]["phases_pct"].values()) == pytest.approx(100, abs=1)


@pytest.mark.slow
def test_cli_sync_reports_the_real_process_per_context(report: dict[str, Any]) -> None:
    figs = _figures(report, "cli_sync")
    assert figs["sqlite_incremental_cpu_ms"]["target"] == "<= 3 ms"
    assert figs["sqlite_skipped_cpu_ms"]["target"] == "<= 0.3 ms"
    assert figs["rss_growth"]["target"] == "<= 1.25x"
    for key in ("start_cpu_s", "rss_3", "rss_growth"):
        assert figs[key]["value"] > 0, key
    # Net of the process start, 3 contexts may cost nothing measurable: a number, though.
    assert figs["sqlite_incremental_vs_floor"]["value"] >= 0
    details = report["benchmarks"]["cli_sync"]["details"]
    assert details["sqlite_floor"]["rows_per_context"] > 0
    assert details["sqlite_incremental"]["runs"] == details["sqlite_skipped"]["runs"] == 1
    if PG_TEST != "skip":
        assert figs["pg_wall_over_cpu"]["target"] == "<= 2x"
        assert details["postgresql"]["floor"]["floor"] == "COPY into empty tables"


@pytest.mark.slow
def test_cli_jobs_report_backfill_dead_source_cache_load_and_catalog(report: dict[str, Any]):
    figs = _figures(report, "cli_jobs")
    assert figs["backfill_cpu_ms"]["target"] == "<= 10 ms"
    assert figs["dead_source_seconds"]["target"] == "< 30 s"
    assert figs["catalog_load_seconds"]["target"] == "< 5 s"
    assert figs["cache_load_unchanged_cpu_ms"]["value"] > 0
    details = report["benchmarks"]["cli_jobs"]["details"]
    assert details["backfill"]["pattern_keys"] > 0
    assert details["catalog_load"]["tenants"] == 50


@pytest.mark.slow
def test_upsert_reports_ratios_on_both_stores(report: dict[str, Any]) -> None:
    figs = _figures(report, "upsert")
    for store in ("pg", "sqlite"):
        assert figs[f"{store}_unchanged_ratio"]["target"] == ">= 0.8x"
    if PG_TEST == "skip":
        assert figs["pg_unchanged_ratio"]["value"] is None
        assert figs["pg_unchanged_ratio"]["passed"] is False
    stores = ("sqlite",) if PG_TEST == "skip" else ("pg", "sqlite")
    for store in stores:
        for case in ("unchanged", "changed", "insert"):
            assert figs[f"{store}_{case}_ratio"]["value"] > 0


@pytest.mark.slow
def test_concurrency_backfill_and_cli_start(report: dict[str, Any]) -> None:
    conc = _figures(report, "concurrency")
    headline = "sqlite" if PG_TEST == "skip" else "postgresql"
    assert conc[f"{headline}_speedup"]["target"] == ">= 6x"
    assert conc[f"{headline}_speedup"]["value"] > 0
    assert conc["source_only_speedup"]["value"] > 0
    backfill = _figures(report, "backfill")
    assert backfill["rows_fetched_ratio"]["value"] > 0
    details = report["benchmarks"]["backfill"]["details"]
    assert details["rows_fetched_counted_at_source"] == details["rows_fetched_reported"]
    cli = _figures(report, "cli_start")
    assert cli["extra_seconds"]["target"] == "< 0.3 s"


@pytest.mark.slow
def test_run_py_json_only_prints_one_json_object(tmp_path: Path) -> None:
    """The script as the README runs it: ``--json-only`` prints one JSON object and no table."""
    script = str(ROOT / "benchmarks" / "run.py")
    proc = subprocess.run(
        [sys.executable, script, "--tiny", "--json-only", "--only", "backfill"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env={**os.environ, **_pg_env()},
    )
    report = json.loads(proc.stdout)
    assert list(report["benchmarks"]) == ["backfill"]
    assert report["sizes"] == "tiny"
    assert proc.stderr == ""


def test_run_py_rejects_an_unknown_benchmark(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--only", "nope"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert "unknown benchmark nope" in proc.stderr


def test_catalog_load_benchmark_writes_the_synthetic_catalog_as_yaml() -> None:
    """``benchmarks/catalog_load.py`` loads what ``synthetic_catalog`` describes."""
    from fulcrum_sync.catalog import parse_catalog

    bench, catalogs = _bench("catalog_load"), _bench("catalogs")
    text = bench.catalog_yaml(30)
    assert parse_catalog(text) == catalogs.synthetic_catalog(30, metrics_per_tenant=1)
    assert "&id" not in text  # every tenant written out, as a person would
