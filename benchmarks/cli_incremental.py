"""Incremental `sync` CPU per context, for one or more checkouts measured side by side.

The same figure as ``cli_sync``'s ``sqlite_incremental_cpu_ms`` (SQLite, one worker,
``--no-patterns``, base + 2 dimensions, a 90-day window), without the rest of that
benchmark, so two versions of the code can be measured in the same run: each checkout gets
its own database (catalog load + FULL sync of P0, not measured), then the INCREMENTAL runs
of P1…Pn and the process-start floor (one context, every key done) run in turn, checkout
after checkout, so a change in the machine's load touches every checkout alike. Also an
everything-done rerun of the whole catalog. The bare-SQL floor of ``cli_floors.py`` is
measured once at the end.

    .venv/bin/python benchmarks/cli_incremental.py --contexts 300 \\
        --checkout /tmp/base --checkout .

Prints one JSON object: per checkout, milliseconds of CPU per context net of the start
(and gross), the start itself, and the ratio to the floor.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.cli_process import Cli, CliRun, Stats, catalog_file, compiled, last_json_line, per
from benchmarks.cli_sync import SYNC, _period
from benchmarks.common import run_child
from benchmarks.databases import sqlite_url

TARGET_CPU_MS = 2.0


def _prepared(folder: Path, checkout: Path, contexts: int) -> Cli:
    cli = Cli(folder, sqlite_url(folder, "state.db"))
    cli.env["PYTHONPATH"] = compiled(checkout)
    cli.run("catalog", "load", str(catalog_file(folder / "catalog.yaml", contexts)))
    cli.run(*SYNC, "--period", _period(0), "--no-patterns")
    return cli


def _incremental(cli: Cli, i: int) -> CliRun:
    run = cli.run(*SYNC, "--period", _period(i), "--no-patterns")
    summary = last_json_line(run.stdout)
    if summary.get("outcome") != "succeeded":
        raise RuntimeError(f"sync {_period(i)}: {summary}")
    return run


def measure(checkouts: list[Path], contexts: int, runs: int) -> dict[str, Any]:
    out: dict[str, Any] = {"contexts": contexts, "runs": runs, "checkouts": {}}
    with tempfile.TemporaryDirectory(prefix="fulcrum-bench-") as tmp:
        root = Path(tmp)
        big = {c: _prepared(root / f"c{k}", c, contexts) for k, c in enumerate(checkouts)}
        small = {c: _prepared(root / f"s{k}", c, 1) for k, c in enumerate(checkouts)}
        for c in checkouts:
            small[c].run(*SYNC, "--period", _period(1), "--no-patterns")
        incr: dict[Path, list[CliRun]] = {c: [] for c in checkouts}
        start: dict[Path, list[CliRun]] = {c: [] for c in checkouts}
        done: dict[Path, list[CliRun]] = {c: [] for c in checkouts}
        for i in range(1, runs + 1):
            for c in checkouts:
                incr[c].append(_incremental(big[c], i))
                start[c].append(small[c].run(*SYNC, "--period", _period(1), "--no-patterns"))
        for _ in range(runs):
            for c in checkouts:
                done[c].append(big[c].run(*SYNC, "--period", _period(runs), "--no-patterns"))
        url = big[checkouts[-1]].env["FULCRUM_SYNC_DATABASE_URL"]
        floor = run_child("cli_floors", ["sqlite", url, str(contexts), _period(runs + 1)]).output
    for c in checkouts:
        s_start = Stats.of(start[c])
        inc = per(Stats.of(incr[c]), s_start, contexts)
        skp = per(Stats.of(done[c]), s_start, contexts)
        out["checkouts"][str(c)] = {
            "start_cpu_s": round(s_start.cpu, 3),
            "incremental_cpu_ms": round(inc["cpu_ms"], 3),
            "incremental_gross_cpu_ms": round(inc["gross_cpu_ms"], 3),
            "incremental_wall_ms": round(inc["wall_ms"], 3),
            "incremental_vs_floor": round(inc["cpu_ms"] / floor["cpu_ms_per_context"], 2),
            "all_done_cpu_ms": round(skp["cpu_ms"], 3),
        }
    out["floor_cpu_ms"] = round(floor["cpu_ms_per_context"], 3)
    # The floor is the SQL alone; a sync also fetches and sanitizes the rows (the demo
    # source here, numpy's import included), measured in the same bare loop.
    out["source_cpu_ms"] = round(floor["source_cpu_ms_per_context"], 3)
    out["floor_with_source_cpu_ms"] = round(
        floor["cpu_ms_per_context"] + floor["source_cpu_ms_per_context"], 3
    )
    out["target_cpu_ms"] = TARGET_CPU_MS
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contexts", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--checkout", type=Path, action="append", default=[])
    args = parser.parse_args(argv)
    checkouts = args.checkout or [Path(__file__).resolve().parents[1]]
    print(json.dumps(measure(checkouts, args.contexts, args.runs), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
