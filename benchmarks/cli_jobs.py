"""The other jobs a user runs, through the real ``fulcrum-sync`` process (one worker).

- ``backfill`` with patterns of the whole demo catalog over one quarter of days (once in the
  quick run), each run on a fresh database (its schema and catalog made first, not
  measured): CPU and wall per context-period and per pattern key;
- ``sync`` of contexts against a Cube that is not there (a closed port, default retries and
  workers): the breaker opens after one request's retries and the run ends with exit 3;
- ``cache-load`` when nothing changed since the last load;
- ``catalog load`` of 20,000 tenants (one day metric each) on a fresh database.

Figures are medians of ``Sizes.cli_repeats`` runs with the process's own CPU (user + system).
"""

from __future__ import annotations

import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from benchmarks.catalog_load import catalog_yaml
from benchmarks.cli_process import Cli, Stats, catalog_file, last_json_line, per
from benchmarks.common import Figure, Measurement, Progress, Sizes
from benchmarks.databases import sqlite_url

QUARTER = (date(2025, 7, 1), date(2025, 9, 30))
TARGET_BACKFILL_CPU_MS = 10.0
TARGET_DEAD_SECONDS = 30.0
TARGET_CATALOG_SECONDS = 5.0
SECRET = "bench-secret-bench-secret-bench-secret"


def measure(sizes: Sizes, progress: Progress) -> Measurement:
    """Run the four jobs; each on SQLite in a temporary folder."""
    m = Measurement("cli_jobs", "Real `fulcrum-sync` jobs: backfill, dead source, cache-load")
    details: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="fulcrum-bench-") as tmp:
        root = Path(tmp)
        _backfill(m, details, root, sizes, progress)
        _dead_source(m, details, root, sizes, progress)
        _cache_load(m, details, root, sizes, progress)
        _catalog_load(m, details, root, sizes, progress)
    m.details = details
    return m


def _backfill(
    m: Measurement, details: dict[str, Any], root: Path, sizes: Sizes, progress: Progress
) -> None:
    start = QUARTER[0]
    end = min(QUARTER[1], start + timedelta(days=sizes.cli_backfill_days - 1))
    scope = ("--tenant", sizes.cli_backfill_tenant) if sizes.cli_backfill_tenant else ()
    args = (
        "backfill",
        "--grain",
        "day",
        "--start",
        start.isoformat(),
        "--end",
        end.isoformat(),
        "--workers",
        "1",
        *scope,
    )
    runs, summary = [], {}
    for i in range(sizes.cli_backfill_runs):
        progress(
            f"cli_jobs: backfill with patterns {start} … {end} {' '.join(scope)} "
            f"(run {i + 1} of {sizes.cli_backfill_runs})"
        )
        cli = Cli(root / f"backfill{i}", sqlite_url(root, f"backfill{i}.db"))
        cli.run("discover", "--grain", "day")  # schema and demo catalog: set-up, not measured
        run = cli.run(*args)
        summary = last_json_line(run.stdout)
        if summary.get("outcome") != "succeeded":
            raise RuntimeError(f"backfill: {summary}")
        runs.append(run)
    stats = Stats.of(runs)
    sync_keys, pattern_keys = summary["sync_keys"], summary["pattern_keys"]
    per_ctx = per(stats, None, sync_keys)
    m.add(
        Figure(
            "backfill_cpu_ms",
            f"backfill with patterns, {len(summary['contexts'])} contexts "
            f"× {summary['periods']} days: CPU per context-period",
            per_ctx["cpu_ms"],
            "ms",
            "<=",
            TARGET_BACKFILL_CPU_MS,
            f"wall {per_ctx['wall_ms']:.1f} ms; {stats.cpu * 1000 / pattern_keys:.2f} ms "
            f"CPU per pattern key ({pattern_keys} keys); peak RSS {stats.rss_mb:.0f} MB",
        ),
    )
    details["backfill"] = stats.to_json() | {
        "sync_keys": sync_keys,
        "pattern_keys": pattern_keys,
        "cpu_ms_per_context_period": round(per_ctx["cpu_ms"], 3),
        "cpu_ms_per_pattern_key": round(stats.cpu * 1000 / pattern_keys, 3),
    }


def _dead_source(
    m: Measurement, details: dict[str, Any], root: Path, sizes: Sizes, progress: Progress
) -> None:
    n = sizes.cli_dead_contexts
    settings = {
        "source": "cube",
        "cube_api_url": f"http://127.0.0.1:{_closed_port()}",
        "cube_api_secret": SECRET,
        "workers": "4",
    }
    if sizes.cli_dead_retries is not None:
        settings["cube_retries"] = str(sizes.cli_dead_retries)
    runs = []
    for i in range(sizes.cli_dead_runs):
        progress(f"cli_jobs: sync of {n} contexts against a dead Cube (run {i + 1})")
        cli = Cli(root / f"dead{i}", sqlite_url(root, f"dead{i}.db"), **settings)
        cli.run("catalog", "load", str(catalog_file(cli.folder / "c.yaml", n)))
        runs.append(
            cli.run(
                "sync", "--grain", "day", "--period", "2025-12-01", "--no-patterns", expect=(3,)
            )
        )
    stats = Stats.of(runs)
    m.add(
        Figure(
            "dead_source_seconds",
            f"sync of {n} contexts, Cube unreachable: exit 3 after",
            stats.wall,
            "s",
            "<",
            TARGET_DEAD_SECONDS,
            f"CPU {stats.cpu:.2f} s; {len(runs)} runs; retries "
            f"{settings.get('cube_retries', 'default')}, 4 workers",
        ),
    )
    details["dead_source"] = stats.to_json() | {"contexts": n}


def _cache_load(
    m: Measurement, details: dict[str, Any], root: Path, sizes: Sizes, progress: Progress
) -> None:
    n = sizes.cli_cache_contexts
    progress(f"cli_jobs: cache-load, {n} contexts synced, loaded once (set-up)")
    cli = Cli(root / "cache", sqlite_url(root, "cache.db"))
    cli.run("catalog", "load", str(catalog_file(cli.folder / "c.yaml", n)))
    cli.run("sync", "--grain", "day", "--period", "2025-12-01", "--no-patterns")
    cli.run("cache-load", "--grain", "day")
    progress(f"cli_jobs: cache-load with nothing changed x{sizes.cli_repeats}")
    stats = Stats.of(cli.repeat(sizes.cli_repeats, "cache-load", "--grain", "day"))
    p = per(stats, None, n)
    m.add(
        Figure(
            "cache_load_unchanged_cpu_ms",
            f"cache-load, nothing changed, {n} contexts: CPU per context",
            p["cpu_ms"],
            "ms",
            note=f"wall {p['wall_ms']:.2f} ms; peak RSS {stats.rss_mb:.0f} MB",
        ),
    )
    details["cache_load_unchanged"] = stats.to_json() | {"contexts": n}


def _catalog_load(
    m: Measurement, details: dict[str, Any], root: Path, sizes: Sizes, progress: Progress
) -> None:
    n = sizes.cli_catalog_tenants
    path = root / "tenants.yaml"
    path.write_text(catalog_yaml(n))
    runs = []
    for i in range(sizes.cli_catalog_runs):
        progress(f"cli_jobs: catalog load of {n} tenants (run {i + 1})")
        cli = Cli(root / f"catalog{i}", sqlite_url(root, f"catalog{i}.db"))
        cli.run("db", "upgrade")
        runs.append(cli.run("catalog", "load", str(path), "--json"))
    stats = Stats.of(runs)
    m.add(
        Figure(
            "catalog_load_seconds",
            f"catalog load of {n:,} tenants",
            stats.wall,
            "s",
            "<",
            TARGET_CATALOG_SECONDS,
            f"CPU {stats.cpu:.2f} s; peak RSS {stats.rss_mb:.0f} MB; {len(runs)} runs",
        ),
    )
    details["catalog_load"] = stats.to_json() | {"tenants": n}


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
