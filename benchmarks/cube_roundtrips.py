"""Cube round trips of an incremental sync, before and after (issue 26), side by side.

Against the Cube protocol server (tests/cube_server.py, a real HTTP server on 127.0.0.1),
``sync --grain day`` of 100 contexts (each a base and 2 dimensions) runs twice per variant:
a FULL sync of one day, then the incremental sync of the next day, which is measured.

Scenario ``own cubes``: 10 tenants x 10 metrics, each metric on a cube of its own (nothing
to share across metrics): /load requests per context.
Scenario ``shared cube``: 34 tenants x 3 metrics on one cube: queries Cube runs per tenant.

Variants, each on its own state database and server:
- ``one query each``: the source as it was, one request per series (a wrapper that hides
  ``fetch_many``);
- ``refuses multi``: the server answers multi requests with 400 (an older Cube): the first
  is refused, then single (shared) queries;
- ``after``: multi requests and shared queries.

The measured sync's requests each wait ``--latency-ms`` in the server (slept, 4 workers),
so the wall shows what the round trips cost.

Usage::

    python benchmarks/cube_roundtrips.py                  # JSON document of the figures
    python benchmarks/cube_roundtrips.py --latency-ms 0
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import httpx
import yaml
from cube_server import SECRET, FakeCube, series_rows
from pydantic import SecretStr
from typer.testing import CliRunner

from fulcrum_sync.cli import app
from fulcrum_sync.domain import SourceStats
from fulcrum_sync.services.deps import Deps
from fulcrum_sync.sources import CubeSource
from fulcrum_sync.sources.base import FetchRequest, SeriesRow, SourceMetadata

FIRST, SECOND = date(2025, 7, 1), date(2025, 7, 2)
SLICES = ("a", "b", "c")


def data(query: dict[str, Any], claims: dict[str, Any]) -> list[dict[str, Any]]:
    """Every day of the window: one value, or one per slice of the dimension."""
    start, end = (date.fromisoformat(d[:10]) for d in query["timeDimensions"][0]["dateRange"])
    member = (query.get("dimensions") or [None])[0]
    seed = len(query["measures"][0]) + len(str(claims.get("tenant_id", "")))
    points: list[tuple[str, str | None, str | None]] = []
    for n in range((end - start).days + 1):
        day = (start + timedelta(days=n)).isoformat()
        if member is None:
            points.append((day, f"{seed + n}.00", None))
        else:
            points.extend((day, f"{seed + n + i}.50", s) for i, s in enumerate(SLICES))
    return series_rows(query, points)


class OneQueryEach:
    """The Cube source as it was: one ``fetch_series`` (one request) per series."""

    name = "cube"

    def __init__(self, source: CubeSource) -> None:
        self._source = source

    def fetch_series(self, request: FetchRequest) -> list[SeriesRow]:
        return self._source.fetch_series(request)

    def fetch_metadata(self, tenant: str) -> SourceMetadata:
        return self._source.fetch_metadata(tenant)

    def stats(self) -> SourceStats:
        return self._source.stats()

    def close(self) -> None:
        self._source.close()


def catalog(path: Path, tenants: int, metrics: int, shared: bool) -> Path:
    """``tenants`` x ``metrics``; each metric on its own cube unless ``shared``."""

    def metric(m: int) -> dict[str, Any]:
        cube = "orders" if shared else f"c{m}"
        return {
            "metric_id": f"m{m}",
            "measure": f"{cube}.amount{m}" if shared else f"{cube}.amount",
            "time_dimension": f"{cube}.created_at",
            "dimensions": [
                {"dimension_id": "region", "member": f"{cube}.region"},
                {"dimension_id": "channel", "member": f"{cube}.channel"},
            ],
            "grains": ["day"],
        }

    doc = {
        "tenants": [
            {
                "tenant_id": t + 1,
                "identifier": f"t{t:03d}",
                "metrics": [metric(m) for m in range(metrics)],
            }
            for t in range(tenants)
        ]
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def run_variant(
    workdir: Path,
    name: str,
    tenants: int,
    metrics: int,
    shared: bool,
    variant: str,
    latency: float,
) -> dict[str, Any]:
    runner = CliRunner()
    fake = FakeCube(data)
    fake.refuse_multi = variant == "refuses multi"
    db = workdir / f"{name}-{variant.replace(' ', '-')}.db"
    with fake.serve() as url, httpx.Client(timeout=30) as client:
        env = {
            "FULCRUM_SYNC_DATABASE_URL": f"sqlite:///{db}",
            "FULCRUM_SYNC_SOURCE": "cube",
            "FULCRUM_SYNC_CUBE_API_URL": url,
            "FULCRUM_SYNC_CUBE_API_SECRET": SECRET,
            "FULCRUM_SYNC_LOG_FORMAT": "json",
            "FULCRUM_SYNC_LOG_LEVEL": "WARNING",
            "FULCRUM_SYNC_WORKERS": "4",
            "FULCRUM_SYNC_HISTORY_START": "2025-06-01",
        }
        path = catalog(workdir / f"{name}.yaml", tenants, metrics, shared)
        loaded = runner.invoke(app, ["catalog", "load", str(path)], env=env)
        assert loaded.exit_code == 0, loaded.output

        def source() -> Any:
            cube = CubeSource(url, SecretStr(SECRET), client=client)
            return OneQueryEach(cube) if variant == "one query each" else cube

        def sync(day: date) -> Any:
            args = ["sync", "--grain", "day", "--period", day.isoformat(), "--no-patterns"]
            return runner.invoke(app, args, env=env, obj=Deps(source=source()))

        first = sync(FIRST)
        assert first.exit_code == 0, first.output
        requests_before, queries_before = len(fake.requests), fake.queries
        fake.latency = latency  # the measured sync only
        started = time.perf_counter()
        second = sync(SECOND)
        wall = time.perf_counter() - started
        assert second.exit_code == 0, second.output
    contexts = tenants * metrics
    requests = len(fake.requests) - requests_before
    queries = fake.queries - queries_before
    return {
        "contexts": contexts,
        "requests": requests,
        "queries": queries,
        "requests_per_context": round(requests / contexts, 2),
        "queries_per_tenant": round(queries / tenants, 2),
        "wall_seconds": round(wall, 2),
        "latency_ms": round(latency * 1000),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=50.0,
        help="every /load answer of the measured sync waits this long (slept)",
    )
    args = parser.parse_args(argv)
    scenarios: list[tuple[str, int, int, bool]] = [
        ("own cubes", 10, 10, False),
        ("shared cube", 34, 3, True),
    ]
    variants = ("one query each", "refuses multi", "after")
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, tenants, metrics, shared in scenarios:
            out[name] = {
                v: run_variant(
                    Path(tmp),
                    name.replace(" ", "-"),
                    tenants,
                    metrics,
                    shared,
                    v,
                    args.latency_ms / 1000,
                )
                for v in variants
            }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
