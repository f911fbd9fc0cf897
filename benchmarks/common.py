"""What every benchmark shares: figures with targets, sizes, machine facts, child processes.

The benchmark databases are in :mod:`benchmarks.databases`; the synthetic catalog, the state
it is discovered into and the instant source in :mod:`benchmarks.catalogs`.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

ROOT = Path(__file__).resolve().parents[1]

Op = Literal["<", "<=", ">="]


@dataclass(slots=True)
class Figure:
    """One reported number, with its target when it has one (``op`` None: for information)."""

    key: str
    label: str
    value: float | None
    unit: str
    op: Op | None = None
    threshold: float | None = None
    note: str = ""

    @property
    def passed(self) -> bool | None:
        if self.op is None or self.threshold is None:
            return None
        if self.value is None:
            return False
        if self.op == "<":
            return self.value < self.threshold
        if self.op == "<=":
            return self.value <= self.threshold
        return self.value >= self.threshold

    @property
    def target(self) -> str:
        if self.op is None or self.threshold is None:
            return ""
        return f"{self.op} {self.threshold:g}" + (f" {self.unit}" if self.unit != "x" else "x")

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "value": None if self.value is None else round(self.value, 4),
            "unit": self.unit,
            "target": self.target or None,
            "passed": self.passed,
            "note": self.note,
        }


@dataclass(slots=True)
class Measurement:
    """What one benchmark found: its figures, how they were measured, and any skip reason."""

    name: str
    title: str
    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    skipped: str | None = None
    error: str | None = None

    def add(self, *figures: Figure) -> None:
        self.figures.extend(figures)

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "seconds": round(self.seconds, 2),
            "skipped": self.skipped,
            "error": self.error,
            "figures": [f.to_json() for f in self.figures],
            "details": self.details,
        }


@dataclass(frozen=True, slots=True)
class Sizes:
    """How big each benchmark runs; ``QUICK`` keeps the ratios meaningful in a few minutes."""

    orchestration_contexts: int = 10_000
    rss_contexts: tuple[int, int] = (1_000, 10_000)
    profile_contexts: int = 2_000
    floor_keys: int = 2_000
    pg_orchestration_contexts: int = 500
    upsert_rows: int = 200_000
    upsert_repeats: int = 3
    concurrency_delay: float = 0.05
    concurrency_contexts: tuple[int, int] = (40, 240)  # workers 1, workers 8
    concurrency_source_only: tuple[int, int] = (40, 240)
    backfill_days: int = 90
    backfill_tenant: str | None = None
    cli_runs: int = 11  # cli_start: --help runs
    # The real CLI (cli_sync, cli_jobs): every figure is the median of ``cli_repeats`` runs.
    cli_repeats: int = 3
    cli_contexts: int = 1_000
    cli_pg_contexts: int = 1_000
    cli_pattern_contexts: int = 500
    cli_rss_contexts: tuple[int, int] = (1_000, 10_000)
    cli_backfill_days: int = 92  # a quarter
    cli_backfill_tenant: str | None = None  # the whole demo catalog
    cli_backfill_runs: int = 3
    cli_dead_contexts: int = 200
    cli_dead_retries: int | None = None  # None: the default setting
    cli_dead_runs: int = 3
    cli_cache_contexts: int = 1_000
    cli_catalog_tenants: int = 20_000
    cli_catalog_runs: int = 3


FULL = Sizes()
QUICK = Sizes(
    orchestration_contexts=1_000,
    rss_contexts=(250, 1_000),
    profile_contexts=300,
    floor_keys=500,
    pg_orchestration_contexts=30,
    upsert_rows=50_000,
    upsert_repeats=3,
    concurrency_contexts=(30, 180),
    concurrency_source_only=(30, 180),
    backfill_tenant="acme",
    cli_runs=7,
    cli_contexts=500,  # per-context figures; the 1,000-context RSS target is the full run's
    cli_pg_contexts=100,
    cli_pattern_contexts=20,
    cli_rss_contexts=(500, 1_500),
    cli_backfill_runs=1,  # the same quarter of the whole demo catalog, once
    cli_dead_runs=1,
    cli_cache_contexts=100,
    cli_catalog_runs=1,
)
TINY = Sizes(
    orchestration_contexts=20,
    rss_contexts=(10, 20),
    profile_contexts=10,
    floor_keys=10,
    pg_orchestration_contexts=5,
    upsert_rows=300,
    upsert_repeats=1,
    concurrency_delay=0.01,
    concurrency_contexts=(4, 8),
    concurrency_source_only=(4, 8),
    backfill_days=7,
    backfill_tenant="acme",
    cli_runs=1,
    cli_repeats=1,
    cli_contexts=3,
    cli_pg_contexts=3,
    cli_pattern_contexts=2,
    cli_rss_contexts=(2, 4),
    cli_backfill_days=3,
    cli_backfill_tenant="acme",
    cli_backfill_runs=1,
    cli_dead_contexts=2,
    cli_dead_retries=0,
    cli_dead_runs=1,
    cli_cache_contexts=2,
    cli_catalog_tenants=50,
    cli_catalog_runs=1,
)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


@contextmanager
def timed() -> Iterator[list[float]]:
    """Yield a one-element list that holds the elapsed seconds once the block ends."""
    box = [0.0]
    start = time.perf_counter()
    try:
        yield box
    finally:
        box[0] = time.perf_counter() - start


def machine() -> dict[str, Any]:
    """Facts about the machine the figures come from."""
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "cpu": _cpu_model(),
        "ram_gb": _ram_gb(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    try:
        import sqlite3

        info["sqlite"] = sqlite3.sqlite_version
    except ImportError:  # pragma: no cover
        pass
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


# --------------------------------------------------------------------------- processes


@dataclass(frozen=True, slots=True)
class ChildResult:
    """A child process's JSON answer, its peak RSS and its wall time."""

    output: dict[str, Any]
    max_rss_mb: float
    seconds: float


def run_child(module: str, args: Sequence[str], *, timeout: float = 900) -> ChildResult:
    """Run ``python -m benchmarks.<module> args``; return its last stdout line as JSON.

    The peak RSS is the child's own (``VmHWM`` it reports through :func:`emit`, else
    ``wait4``'s rusage), so nothing the parent holds counts.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", f"benchmarks.{module}", *args],
            stdout=out,
            stderr=err,
            env=env,
            cwd=str(ROOT),
        )
        deadline = start + timeout
        while True:
            pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                proc.returncode = -9
                raise RuntimeError(f"benchmarks.{module} timed out after {timeout:g}s")
            time.sleep(0.02)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise RuntimeError(
            f"benchmarks.{module} {' '.join(args)} exited {proc.returncode}: {stderr[-2000:]}"
        )
    lines = [line for line in stdout.splitlines() if line.strip()]
    output = json.loads(lines[-1])
    # ru_maxrss survives exec (it would count the forked parent): prefer the child's VmHWM.
    rss = output.pop("peak_rss_mb", None) or rusage.ru_maxrss / 1024
    return ChildResult(output, rss, seconds)


def peak_rss_mb() -> float | None:
    """This process's peak RSS since exec (``VmHWM``), or None off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def emit(output: dict[str, Any]) -> None:
    """Print a child's answer as the last stdout line, with its peak RSS."""
    print(json.dumps({**output, "peak_rss_mb": peak_rss_mb()}), flush=True)


def pct(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole else 0.0


Progress = Callable[[str], None]
