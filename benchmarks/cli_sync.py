"""What a user runs: the real ``fulcrum-sync sync`` process, one worker, over generated catalogs.

Every context is a day metric with a base series and two dimensions (the demo source's
generic slices). A first run of period P0 is FULL (365 days, clipped at the history start);
the runs measured are the daily steady state: INCREMENTAL syncs of P1, P2, P3 (a 90-day
window each, so each run re-fetches and compares about 1,100 rows per context and stores
the new day), the median of the three. Then:

- the all-skipped rerun: P3 again, three times (every key already done);
- patterns on: the same on a catalog whose metrics enable all five patterns;
- PostgreSQL: the INCREMENTAL runs on a fresh database;
- memory: peak RSS of the INCREMENTAL run at two sizes, with a 7-day window both times so
  the larger size's FULL set-up stays small (RSS depends on what a run keeps per context,
  not on the window).

Per figure: milliseconds of CPU (user + system, the process's own accounting) and wall per
context, net of the process start (the same command on a one-context catalog, every key
done, measured in the same run) with the gross figure beside it; peak RSS; and the ratio to
a floor from ``benchmarks/cli_floors.py`` (the same SQL as a bare loop on the driver;
COPY into an empty table).
"""

from __future__ import annotations

import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from benchmarks.cli_process import ALL_PATTERNS, Cli, Stats, catalog_file, last_json_line, per
from benchmarks.common import Figure, Measurement, Progress, Sizes, run_child
from benchmarks.databases import pg_admin_url, pg_database, pg_schema, pg_version, sqlite_url

P0 = date(2025, 12, 1)
TARGET_CPU_MS = 3.0  # incremental, patterns off, SQLite, per context
TARGET_SKIPPED_CPU_MS = 0.3
TARGET_PG_WALL_OVER_CPU = 2.0
TARGET_RSS_MB = 200.0
RSS_GROWTH_LIMIT = 1.25
PATTERN_KEYS = len(ALL_PATTERNS) + 1  # per context: dimension_analysis runs per dimension (2)
SYNC = ("sync", "--grain", "day", "--workers", "1")


def _period(i: int) -> str:
    return (P0 + timedelta(days=i)).isoformat()


def _incremental(cli: Cli, runs: int, *, first: int = 1, patterns: bool = False) -> Stats:
    """Sync periods P(first)…P(first+runs-1), one run each; check each synced everything."""
    flags = () if patterns else ("--no-patterns",)
    done = []
    for i in range(first, first + runs):
        run = cli.run(*SYNC, "--period", _period(i), *flags)
        summary = last_json_line(run.stdout)
        if summary.get("outcome") != "succeeded" or summary["counts"].get("succeeded") is None:
            raise RuntimeError(f"sync {_period(i)}: {summary}")
        done.append(run)
    return Stats.of(done)


def _prepared(folder: Path, url: str, contexts: int, **catalog: Any) -> Cli:
    """Load a catalog of ``contexts`` and run the FULL sync of P0 (not measured)."""
    cli = Cli(folder, url)
    path = catalog_file(folder / "catalog.yaml", contexts, **catalog)
    cli.run("catalog", "load", str(path))
    cli.run(*SYNC, "--period", _period(0), "--no-patterns")
    return cli


def _start_floor(folder: Path, url: str, runs: int) -> Stats:
    """The process start: the same command on a one-context catalog whose key is done."""
    cli = _prepared(folder, url, 1)
    cli.run(*SYNC, "--period", _period(1), "--no-patterns")
    return Stats.of(cli.repeat(runs, *SYNC, "--period", _period(1), "--no-patterns"))


def measure(sizes: Sizes, progress: Progress) -> Measurement:
    """Run every CLI sync figure; PostgreSQL ones are left out when it is unreachable."""
    n, runs = sizes.cli_contexts, sizes.cli_repeats
    m = Measurement("cli_sync", f"Real `fulcrum-sync sync` process, one worker, {n} contexts")
    out: dict[str, Any] = {"contexts": n, "runs_per_figure": runs}
    with tempfile.TemporaryDirectory(prefix="fulcrum-bench-") as tmp:
        root = Path(tmp)
        progress(f"cli_sync: process start (one context, every key done) x{runs}")
        start = _start_floor(root / "start", sqlite_url(root, "start.db"), runs)
        progress(f"cli_sync: SQLite, catalog + FULL sync of {n} contexts (set-up)")
        cli = _prepared(root / "sqlite", sqlite_url(root, "sqlite.db"), n)
        progress(f"cli_sync: SQLite, {runs} INCREMENTAL runs of {n} contexts")
        incr = _incremental(cli, runs)
        progress(f"cli_sync: SQLite, all-skipped rerun x{runs}")
        skipped = Stats.of(cli.repeat(runs, *SYNC, "--period", _period(runs), "--no-patterns"))
        progress("cli_sync: SQLite floor (the same SQL as a bare loop)")
        floor = run_child(
            "cli_floors",
            ["sqlite", cli.env["FULCRUM_SYNC_DATABASE_URL"], str(n), _period(runs + 1)],
        ).output
        np_ = sizes.cli_pattern_contexts
        progress(f"cli_sync: patterns on, {np_} contexts, {runs} runs")
        pcli = _prepared(
            root / "patterns",
            sqlite_url(root, "patterns.db"),
            np_,
            patterns=ALL_PATTERNS,
            day_target=1000.0,
        )
        with_patterns = _incremental(pcli, runs, patterns=True)
        keys = PATTERN_KEYS
        pg = _postgres(root, sizes, progress)
        small, big = sizes.cli_rss_contexts
        rss: dict[int, Stats] = {}
        for size in (small, big):
            progress(f"cli_sync: peak RSS, {size} contexts, 7-day window")
            url = sqlite_url(root, f"rss{size}.db")
            short = Cli(
                root / f"rss{size}", url, lookback_day_full="7", lookback_day_incremental="7"
            )
            short.run("catalog", "load", str(catalog_file(short.folder / "c.yaml", size)))
            short.run(*SYNC, "--period", _period(0), "--no-patterns")
            rss[size] = _incremental(short, 1)

    inc, skp = per(incr, start, n), per(skipped, start, n)
    pat = per(with_patterns, start, np_)
    m.add(
        Figure(
            "start_cpu_s",
            "process start (one context, every key done): CPU",
            start.cpu,
            "s",
            note=f"wall {start.wall:.2f} s; peak RSS {start.rss_mb:.0f} MB",
        ),
        Figure(
            "sqlite_incremental_cpu_ms",
            "SQLite INCREMENTAL, patterns off: CPU per context",
            inc["cpu_ms"],
            "ms",
            "<=",
            TARGET_CPU_MS,
            f"wall {inc['wall_ms']:.2f} ms; gross {inc['gross_cpu_ms']:.2f} ms CPU, "
            f"{inc['gross_wall_ms']:.2f} ms wall; peak RSS {incr.rss_mb:.0f} MB",
        ),
        Figure(
            "sqlite_incremental_vs_floor",
            "SQLite INCREMENTAL CPU / bare SQL loop CPU",
            inc["cpu_ms"] / floor["cpu_ms_per_context"],
            "x",
            note=f"floor {floor['cpu_ms_per_context']:.2f} ms CPU, "
            f"{floor['wall_ms_per_context']:.2f} ms wall per context; "
            f"{floor['rows_per_context']:.0f} rows per context",
        ),
        Figure(
            "sqlite_skipped_cpu_ms",
            "SQLite all-skipped rerun: CPU per context",
            skp["cpu_ms"],
            "ms",
            "<=",
            TARGET_SKIPPED_CPU_MS,
            f"wall {skp['wall_ms']:.2f} ms; gross {skp['gross_cpu_ms']:.2f} ms CPU",
        ),
        Figure(
            "sqlite_patterns_cpu_ms",
            f"SQLite INCREMENTAL, patterns on ({np_} contexts): CPU per context",
            pat["cpu_ms"],
            "ms",
            note=f"wall {pat['wall_ms']:.2f} ms; {keys} pattern keys per context; "
            f"peak RSS {with_patterns.rss_mb:.0f} MB",
        ),
        Figure(
            f"rss_{n}",
            f"peak RSS, INCREMENTAL, {n} contexts",
            incr.rss_mb,
            "MB",
            "<",
            TARGET_RSS_MB,
        ),
        Figure(
            "rss_growth",
            f"peak RSS {big} / {small} contexts (7-day window)",
            rss[big].rss_mb / rss[small].rss_mb,
            "x",
            "<=",
            RSS_GROWTH_LIMIT,
            f"{rss[small].rss_mb:.0f} → {rss[big].rss_mb:.0f} MB",
        ),
    )
    _add_postgres(m, pg, start)
    out |= {
        "start": start.to_json(),
        "sqlite_incremental": incr.to_json() | {k: round(v, 3) for k, v in inc.items()},
        "sqlite_skipped": skipped.to_json() | {k: round(v, 3) for k, v in skp.items()},
        "sqlite_floor": floor,
        "patterns_on": with_patterns.to_json() | {"contexts": np_, "pattern_keys": keys},
        "rss": {str(k): v.to_json() for k, v in rss.items()},
        "postgresql": pg.get("json"),
    }
    m.details = out
    return m


def _postgres(root: Path, sizes: Sizes, progress: Progress) -> dict[str, Any]:
    admin = pg_admin_url()
    if pg_version(admin) is None:
        return {"skipped": f"PostgreSQL not reachable at {admin}"}
    n, runs = sizes.cli_pg_contexts, sizes.cli_repeats
    with pg_database(admin) as db:
        progress(f"cli_sync: PostgreSQL, catalog + FULL sync of {n} contexts (set-up)")
        url = pg_schema(db)
        cli = _prepared(root / "pg", url, n)
        progress(f"cli_sync: PostgreSQL, {runs} INCREMENTAL runs of {n} contexts")
        incr = _incremental(cli, runs)
        progress("cli_sync: PostgreSQL floor (COPY into empty tables)")
        floor = run_child("cli_floors", ["copy", url, str(n), _period(runs + 1)]).output
        start = _start_floor(root / "pg-start", pg_schema(db), runs)
    return {
        "n": n,
        "incr": incr,
        "floor": floor,
        "start": start,
        "json": {
            "contexts": n,
            "incremental": incr.to_json(),
            "start": start.to_json(),
            "floor": floor,
        },
    }


def _add_postgres(m: Measurement, pg: dict[str, Any], _sqlite_start: Stats) -> None:
    if "incr" not in pg:
        m.add(
            Figure(
                "pg_wall_over_cpu",
                "PostgreSQL INCREMENTAL: wall / CPU",
                None,
                "x",
                "<=",
                TARGET_PG_WALL_OVER_CPU,
                pg.get("skipped", ""),
            )
        )
        return
    n, incr, start, floor = pg["n"], pg["incr"], pg["start"], pg["floor"]
    inc = per(incr, start, n)
    m.add(
        Figure(
            "pg_incremental_cpu_ms",
            f"PostgreSQL INCREMENTAL, {n} contexts: CPU per context",
            inc["cpu_ms"],
            "ms",
            note=f"wall {inc['wall_ms']:.2f} ms; gross {inc['gross_cpu_ms']:.2f} ms CPU, "
            f"{inc['gross_wall_ms']:.2f} ms wall; start {start.cpu:.2f} s CPU",
        ),
        Figure(
            "pg_wall_over_cpu",
            "PostgreSQL INCREMENTAL: wall / CPU (per context, net)",
            inc["wall_ms"] / inc["cpu_ms"] if inc["cpu_ms"] else None,
            "x",
            "<=",
            TARGET_PG_WALL_OVER_CPU,
        ),
        Figure(
            "pg_incremental_vs_copy",
            "PostgreSQL INCREMENTAL wall / COPY into empty tables",
            inc["wall_ms"] / floor["wall_ms_per_context"],
            "x",
            note=f"COPY {floor['wall_ms_per_context']:.2f} ms wall, "
            f"{floor['cpu_ms_per_context']:.2f} ms CPU per context",
        ),
    )
