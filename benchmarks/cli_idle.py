"""The cron job that finds nothing to do: an everything-done ``fulcrum-sync sync --grain day``.

The demo catalog (patterns on) in a fresh SQLite database is synced once (not measured);
then the same command, which now finds every key done, runs ``runs`` times as cron starts it
(``benchmarks/launch.py``: its own user + system CPU), in turn with two floors measured in
the same minutes: the bare interpreter (``python -c pass``) and the libraries any such job
needs (``python -c "import sqlalchemy, sqlite3"``). Several checkouts can be measured side
by side, each with its own database, run after run in turn, so a change in the machine's
load touches each alike:

    .venv/bin/python benchmarks/cli_idle.py --runs 15 --checkout /tmp/base --checkout .

Prints one JSON object (per checkout and floor: median, min and max CPU seconds, and the
medians' difference to the library floor) and a short table on stderr. ``cli_start`` reports
the figure for this checkout in ``benchmarks/run.py`` (target: <= 0.5 s, issue 26).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.cli_process import LAUNCHER, Cli, compiled, last_json_line
from benchmarks.common import ROOT, Figure, Measurement, Progress, Sizes, median
from benchmarks.databases import sqlite_url

TARGET_CPU_SECONDS = 0.5
SYNC = ("sync", "--grain", "day")
FLOORS = {
    "python -c pass": "pass",
    "python -c 'import sqlalchemy, sqlite3'": "import sqlalchemy, sqlite3",
}
LIBRARY_FLOOR = "python -c 'import sqlalchemy, sqlite3'"


def _prepared(folder: Path, checkout: Path) -> Cli:
    """A database of the demo catalog whose day keys are all done (the first sync)."""
    cli = Cli(folder, sqlite_url(folder, "state.db"))
    cli.env["PYTHONPATH"] = compiled(checkout)
    cli.env.pop("FULCRUM_SYNC_WORKERS", None)  # the settings' default, as cron runs it
    first = cli.run(*SYNC)
    if last_json_line(first.stdout).get("outcome") != "succeeded":
        raise RuntimeError(f"the first sync of {checkout} did not succeed")
    return cli


def _floor(cli: Cli, code: str) -> float:
    """CPU seconds of ``python -c code`` through the same launcher as the command."""
    out, err = cli.folder / "floor.out", cli.folder / "floor.err"
    proc = subprocess.run(
        [sys.executable, "-I", str(LAUNCHER), str(out), str(err), "--", sys.executable, "-c", code],
        cwd=cli.folder,
        env=cli.env,
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    return float(report["user"] + report["sys"])


def _spread(values: list[float]) -> dict[str, Any]:
    return {
        "median_s": round(median(values), 3),
        "min_s": round(min(values), 3),
        "max_s": round(max(values), 3),
        "runs": len(values),
    }


def measure_checkouts(
    checkouts: list[Path], runs: int, progress: Progress | None = None
) -> dict[str, Any]:
    """CPU of the everything-done sync per checkout and of the two floors, runs in turn."""
    say = progress or (lambda _msg: None)
    cpu: dict[str, list[float]] = {name: [] for name in FLOORS}
    with tempfile.TemporaryDirectory(prefix="fulcrum-bench-") as tmp:
        clis = {str(c): _prepared(Path(tmp) / f"c{k}", c) for k, c in enumerate(checkouts)}
        cpu.update({name: [] for name in clis})
        for i in range(max(runs, 1)):
            say(f"cli_idle: everything-done sync and floors, run {i + 1} of {runs}")
            some = next(iter(clis.values()))
            for name, code in FLOORS.items():
                cpu[name].append(_floor(some, code))
            for name, cli in clis.items():
                done = cli.run(*SYNC)
                summary = last_json_line(done.stdout)
                if summary.get("outcome") != "succeeded":
                    raise RuntimeError(f"the everything-done sync of {name}: {summary}")
                cpu[name].append(done.cpu)
    floor = median(cpu[LIBRARY_FLOOR])
    report: dict[str, Any] = {"command": "fulcrum-sync " + " ".join(SYNC), "floors": {}}
    for name in FLOORS:
        report["floors"][name] = _spread(cpu[name])
    report["checkouts"] = {
        name: _spread(cpu[name]) | {"above_library_floor_s": round(median(cpu[name]) - floor, 3)}
        for name in clis
    }
    return report


def add_figures(m: Measurement, sizes: Sizes, progress: Progress) -> None:
    """The everything-done sync of this checkout, for ``cli_start`` in ``run.py``."""
    report = measure_checkouts([ROOT], sizes.cli_runs, progress)
    mine = report["checkouts"][str(ROOT)]
    floors = report["floors"]
    m.add(
        Figure(
            "everything_done_cpu_s",
            "everything-done `sync --grain day`, demo catalog: CPU (median)",
            mine["median_s"],
            "s",
            "<=",
            TARGET_CPU_SECONDS,
            f"min {mine['min_s']:.3f}, max {mine['max_s']:.3f}; floors (same run): "
            f"python -c pass {floors['python -c pass']['median_s']:.3f} s, "
            f"import sqlalchemy, sqlite3 {floors[LIBRARY_FLOOR]['median_s']:.3f} s",
        ),
    )
    m.details["everything_done"] = report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=11, help="runs of each command (11)")
    parser.add_argument(
        "--checkout",
        action="append",
        type=Path,
        help="a source tree to measure (repeatable; default: this one)",
    )
    args = parser.parse_args(argv)
    checkouts = args.checkout or [ROOT]
    report = measure_checkouts(checkouts, args.runs, lambda msg: print(msg, file=sys.stderr))
    print(json.dumps(report, indent=2))
    rows = [*report["floors"].items(), *report["checkouts"].items()]
    for name, row in rows:
        print(
            f"{row['median_s']:6.3f} s median  {row['min_s']:6.3f} min  {row['max_s']:6.3f} max"
            f"  {name}",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
