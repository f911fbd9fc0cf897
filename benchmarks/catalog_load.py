"""Catalog load: ``fulcrum-sync catalog load FILE`` wall time against the number of tenants.

Each size gets a generated catalog (``synthetic_catalog``: every tenant one day metric) and a
fresh state database, then the real CLI loads it in a child process. The figures are the wall
and CPU seconds per size (CPU seconds are what a busy shared machine does not inflate) and how
the time per tenant grows from the smallest to the largest size (at most 1.0 is linear; the
quadratic duplicate check this replaced grew it about 10x from 2,000 to 20,000 tenants).

Usage::

    python benchmarks/catalog_load.py                    # 2,000 5,000 10,000 20,000 on SQLite
    python benchmarks/catalog_load.py 500 1000 --pg postgresql://postgres@127.0.0.1/postgres
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.catalogs import synthetic_catalog
from benchmarks.cli_process import cli_command
from benchmarks.databases import pg_database, pg_schema

SIZES = (2_000, 5_000, 10_000, 20_000)
TARGET_SECONDS = 5.0  # the largest size, on SQLite, on the 2-core test machine


def catalog_yaml(tenants: int) -> str:
    """``benchmarks.catalogs.synthetic_catalog`` with one metric per tenant, as YAML a person
    would write (defaults left out, no aliases)."""
    catalog = synthetic_catalog(tenants, metrics_per_tenant=1)
    data = catalog.model_dump(mode="json", exclude_defaults=True)
    return yaml.dump(data, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False)


def load_seconds(tenants: int, database_url: str, folder: Path) -> tuple[float, float]:
    """Wall and CPU seconds of ``fulcrum-sync catalog load`` of ``tenants`` tenants."""
    path = folder / f"catalog-{tenants}.yaml"
    path.write_text(catalog_yaml(tenants))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FULCRUM_SYNC_")}
    env["FULCRUM_SYNC_DATABASE_URL"] = database_url
    subprocess.run(
        [*cli_command(), "db", "upgrade"], cwd=folder, env=env, check=True, capture_output=True
    )
    before = _children_cpu()
    started = time.perf_counter()
    subprocess.run(
        [*cli_command(), "catalog", "load", str(path), "--json"],
        cwd=folder,
        env=env,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started, _children_cpu() - before


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(sizes: tuple[int, ...], pg_admin: str | None = None) -> dict[str, Any]:
    """Load each size on a fresh SQLite file (or PostgreSQL schema); return the figures."""
    seconds: dict[int, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="fulcrum-bench-") as tmp:
        folder = Path(tmp)
        if pg_admin:
            with pg_database(pg_admin) as database:
                for n in sizes:
                    seconds[n] = load_seconds(n, pg_schema(database), folder)
        else:
            for n in sizes:
                seconds[n] = load_seconds(n, f"sqlite:///{folder / f'state-{n}.db'}", folder)
    small, large = min(sizes), max(sizes)
    growth = (seconds[large][0] / large) / (seconds[small][0] / small)
    return {
        "store": "postgresql" if pg_admin else "sqlite",
        "wall_seconds": {str(n): round(s[0], 2) for n, s in seconds.items()},
        "cpu_seconds": {str(n): round(s[1], 2) for n, s in seconds.items()},
        "ms_per_tenant": {str(n): round(1000 * s[0] / n, 3) for n, s in seconds.items()},
        "per_tenant_growth": round(growth, 2),
        "largest_under_target": seconds[large][0] < TARGET_SECONDS,
        "target_seconds": TARGET_SECONDS,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=list(SIZES), help="tenant counts")
    parser.add_argument("--pg", help="PostgreSQL admin URL: measure there instead of SQLite")
    args = parser.parse_args(argv)
    report = measure(tuple(args.sizes), args.pg)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
