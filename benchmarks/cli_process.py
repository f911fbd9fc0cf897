"""Run the real ``fulcrum-sync`` process as cron starts it, and read its own accounting.

Each run goes through ``benchmarks/launch.py`` (a small launcher, so the peak RSS read is
the command's, not the benchmark process's), with an environment that holds nothing of
ours but the ``FULCRUM_SYNC_*`` settings given (and ``PYTHONPATH`` = this checkout): stdout
is a file (a pod's log), stdin is closed, the log format is left to ``auto`` (JSON lines,
since stdout is not a terminal).
"""

from __future__ import annotations

import compileall
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from benchmarks.catalogs import synthetic_catalog
from benchmarks.common import ROOT, median

LAUNCHER = ROOT / "benchmarks" / "launch.py"
TODAY = "2026-01-10"  # FULCRUM_SYNC_TODAY: every period the benchmarks name is complete
ALL_PATTERNS = (
    "performance_status",
    "historical_performance",
    "dimension_analysis",
    "forecasting",
    "data_quality",
)


def cli_command() -> list[str]:
    """The installed ``fulcrum-sync`` script next to this interpreter, else ``-m``."""
    script = Path(sys.executable).parent / "fulcrum-sync"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "fulcrum_sync"]


@dataclass(frozen=True, slots=True)
class CliRun:
    """One process: exit code, wall and CPU seconds (user + system), peak RSS, its stdout."""

    exit: int
    wall: float
    cpu: float
    rss_mb: float
    stdout: Path


@dataclass(frozen=True, slots=True)
class Stats:
    """The medians of several runs of the same command."""

    runs: int
    wall: float
    cpu: float
    rss_mb: float

    @classmethod
    def of(cls, runs: Sequence[CliRun]) -> Stats:
        return cls(
            len(runs),
            median([r.wall for r in runs]),
            median([r.cpu for r in runs]),
            max(r.rss_mb for r in runs),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "wall_s": round(self.wall, 3),
            "cpu_s": round(self.cpu, 3),
            "peak_rss_mb": round(self.rss_mb, 1),
        }


def compiled(checkout: Path) -> str:
    """Compile ``checkout``'s ``fulcrum_sync`` to bytecode, as pip and the image do for an
    installed package, and return the checkout's path for ``PYTHONPATH``. Under this
    machine's ``PYTHONDONTWRITEBYTECODE=1`` a checkout is otherwise compiled from source by
    every process: ~0.1 s of CPU at start, and the modules only the work imports counted as
    work (a deployed process pays neither)."""
    compileall.compile_dir(str(checkout / "fulcrum_sync"), quiet=1)
    return str(checkout.resolve())


class Cli:
    """``fulcrum-sync`` in ``folder`` against one state database, one worker by default."""

    def __init__(self, folder: Path, database_url: str, **settings: str) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("FULCRUM_SYNC_")}
        env["PYTHONPATH"] = compiled(ROOT)  # the checkout these benchmarks belong to (editable
        # installs resolve after PYTHONPATH), so a copy of an older commit measures itself
        env.update(
            FULCRUM_SYNC_DATABASE_URL=database_url,
            FULCRUM_SYNC_TODAY=TODAY,
            FULCRUM_SYNC_WORKERS="1",
        )
        env.update({f"FULCRUM_SYNC_{k.upper()}": v for k, v in settings.items()})
        self.env = env
        self._count = 0

    def run(self, *args: str, expect: Sequence[int] = (0,), timeout: float = 1800) -> CliRun:
        """Run ``fulcrum-sync args``; raise RuntimeError on an unexpected exit code."""
        self._count += 1
        out = self.folder / f"run{self._count:03d}.out"
        err = self.folder / f"run{self._count:03d}.err"
        proc = subprocess.run(
            [sys.executable, "-I", str(LAUNCHER), str(out), str(err), "--", *cli_command(), *args],
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
        report = json.loads(proc.stdout.strip().splitlines()[-1])
        run = CliRun(
            report["exit"],
            report["wall"],
            report["user"] + report["sys"],
            report["max_rss_kb"] / 1024,
            out,
        )
        if run.exit not in expect:
            tail = (
                err.read_text(errors="replace")[-1500:] or out.read_text(errors="replace")[-1500:]
            )
            raise RuntimeError(f"fulcrum-sync {' '.join(args)} exited {run.exit}: {tail}")
        return run

    def repeat(self, times: int, *args: str, expect: Sequence[int] = (0,)) -> list[CliRun]:
        return [self.run(*args, expect=expect) for _ in range(max(times, 1))]


def catalog_file(
    path: Path,
    contexts: int,
    *,
    dimensions: int = 2,
    patterns: Sequence[str] = (),
    day_target: float | None = None,
) -> Path:
    """Write ``synthetic_catalog(contexts)`` as YAML: day metrics, ``dimensions`` each."""
    data = synthetic_catalog(contexts, dimensions=dimensions).model_dump(
        mode="json", exclude_defaults=True
    )
    for tenant in data["tenants"]:
        for metric in tenant["metrics"]:
            if patterns:
                metric["patterns"] = list(patterns)
            if day_target is not None:
                metric["targets"] = {"day": day_target}
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    path.write_text(yaml.dump(data, Dumper=dumper, sort_keys=False))
    return path


def last_json_line(path: Path) -> dict[str, Any]:
    """The last JSON object line of a run's stdout (the closing summary event)."""
    for line in reversed(path.read_text().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            parsed: dict[str, Any] = json.loads(line)
            return parsed
    raise RuntimeError(f"no JSON line in {path}")


def per(stats: Stats, floor: Stats | None, n: int) -> dict[str, float]:
    """Per-unit milliseconds of ``stats``: gross, and net of ``floor`` (process start)."""
    gross_cpu, gross_wall = stats.cpu * 1000 / n, stats.wall * 1000 / n
    if floor is None:
        return {"cpu_ms": gross_cpu, "wall_ms": gross_wall, "gross_cpu_ms": gross_cpu}
    return {
        "cpu_ms": max(stats.cpu - floor.cpu, 0.0) * 1000 / n,
        "wall_ms": max(stats.wall - floor.wall, 0.0) * 1000 / n,
        "gross_cpu_ms": gross_cpu,
        "gross_wall_ms": gross_wall,
    }
