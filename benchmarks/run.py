"""Run the fulcrum-sync benchmarks; print one JSON object (stdout) and a table (stderr).

Usage::

    python benchmarks/run.py            # full sizes (10,000 contexts, 200,000 rows, ...)
    python benchmarks/run.py --quick    # smaller sizes, same ratios, 3-5 minutes on 2 cores
    python benchmarks/run.py --quick --json-only --only upsert,cli_start

Every figure carries its target and pass/fail; ratios are against floors measured in the
same run. PostgreSQL comes from ``FULCRUM_SYNC_BENCH_PG`` (an admin URL, default
``postgresql://postgres@127.0.0.1:5432/postgres``); each benchmark creates a database of
its own and drops it. ``--check`` exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import (
    backfill,
    cli_jobs,
    cli_start,
    cli_sync,
    concurrency,
    orchestration,
    reference,
    upsert,
)
from benchmarks.common import FULL, QUICK, TINY, Measurement, Progress, Sizes, machine
from benchmarks.databases import pg_admin_url, pg_version

SCHEMA_VERSION = 1

Bench = Callable[[Sizes, Progress], Measurement]
BENCHMARKS: dict[str, Bench] = {
    "cli_sync": cli_sync.measure,
    "cli_jobs": cli_jobs.measure,
    "orchestration": orchestration.measure,
    "upsert": upsert.measure,
    "concurrency": concurrency.measure,
    "backfill": backfill.measure,
    "cli_start": cli_start.measure,
}


def run_all(
    sizes: Sizes, names: list[str] | None = None, progress: Progress | None = None
) -> dict[str, Any]:
    """Run the named benchmarks (default: all) and return the JSON report.

    A benchmark that raises is reported with its error (and counts as failed); the others
    still run.
    """
    say = progress or (lambda _msg: None)
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    info = machine()
    info["postgresql"] = pg_version(pg_admin_url())
    refs: dict[str, float] = {}  # the reference workload's median before each benchmark
    results: dict[str, Measurement] = {}
    for name in names or list(BENCHMARKS):
        refs[name] = reference.measure_ms()["median"]
        begin = time.perf_counter()
        try:
            measurement = BENCHMARKS[name](sizes, say)
        except Exception as exc:
            measurement = Measurement(name, name, error=f"{type(exc).__name__}: {exc}")
            say(traceback.format_exc())
        measurement.seconds = time.perf_counter() - begin
        results[name] = measurement
    refs["end"] = reference.measure_ms()["median"]
    info["reference_cpu_ms"] = refs
    figures = [f for m in results.values() for f in m.figures]
    targets = [f for f in figures if f.passed is not None]
    missed = [f"{m.name}.{f.key}" for m in results.values() for f in m.figures if f.passed is False]
    errors = [m.name for m in results.values() if m.error]
    return {
        "schema": SCHEMA_VERSION,
        "started_at": started.isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - t0, 1),
        "sizes": {FULL: "full", QUICK: "quick", TINY: "tiny"}.get(sizes, "custom"),
        "machine": info,
        "benchmarks": {name: m.to_json() for name, m in results.items()},
        "summary": {
            "targets": len(targets),
            "passed": sum(1 for f in targets if f.passed),
            "missed": missed,
            "errors": errors,
            "skipped": [m.name for m in results.values() if m.skipped],
            "all_passed": not missed and not errors,
        },
    }


def _reference(m: dict[str, Any]) -> str:
    refs = list((m.get("reference_cpu_ms") or {}).values())
    if not refs:
        return "reference workload not timed"
    return f"reference workload {min(refs):.0f}–{max(refs):.0f} ms CPU (before each benchmark)"


def render_table(report: dict[str, Any]) -> None:
    """Print the report as a rich table on stderr (wide when stderr is not a terminal)."""
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True, highlight=False)
    if not console.is_terminal:
        console = Console(stderr=True, highlight=False, width=180)
    m = report["machine"]
    table = Table(
        title=(
            f"fulcrum-sync benchmarks ({report['sizes']}, {report['seconds']:.0f} s) — "
            f"{m['nproc']} CPU, {m['ram_gb']} GB RAM, Python {m['python']}, "
            f"PostgreSQL {m['postgresql'] or 'n/a'}, load average {m['load_average'][0]}, "
            f"{_reference(m)}"
        ),
        title_justify="left",
    )
    table.add_column("benchmark")
    table.add_column("figure")
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("target", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("how / where", style="dim")
    marks = {True: "[green]pass[/]", False: "[red]FAIL[/]", None: "[dim]info[/]"}
    for name, bench in report["benchmarks"].items():
        if bench["error"] or bench["skipped"]:
            status = "[red]ERROR[/]" if bench["error"] else "[yellow]skipped[/]"
            table.add_row(name, bench["error"] or bench["skipped"], "", "", status, "")
            table.add_section()
            continue
        for i, fig in enumerate(bench["figures"]):
            value = "n/a" if fig["value"] is None else f"{fig['value']:,.3g} {fig['unit']}".strip()
            table.add_row(
                name if i == 0 else "",
                fig["label"],
                value,
                fig["target"] or "",
                marks[fig["passed"]],
                fig["note"],
            )
        table.add_section()
    console.print(table)
    s = report["summary"]
    console.print(
        f"{s['passed']}/{s['targets']} targets met"
        + (f"; missed: {', '.join(s['missed'])}" if s["missed"] else "")
        + (f"; errors: {', '.join(s['errors'])}" if s["errors"] else "")
    )


def to_markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown table with its machine line (for docs/benchmarks.md)."""
    m = report["machine"]
    lines = [
        f"{report['sizes']} run, {report['started_at']}, {report['seconds']:.0f} s: "
        f"{m['nproc']} CPU ({m['cpu']}), {m['ram_gb']} GB RAM, Python {m['python']}, "
        f"PostgreSQL {m['postgresql'] or 'n/a'}, SQLite {m.get('sqlite', 'n/a')}, "
        f"load average {m['load_average'][0]} at start; {_reference(m)}.",
        "",
        "| benchmark | figure | value | target | result | how / where |",
        "|---|---|---:|---|---|---|",
    ]
    marks = {True: "pass", False: "**FAIL**", None: "info"}
    for name, bench in report["benchmarks"].items():
        if bench["error"] or bench["skipped"]:
            lines.append(f"| {name} | {bench['error'] or bench['skipped']} | | | error | |")
            continue
        for fig in bench["figures"]:
            value = "n/a" if fig["value"] is None else f"{fig['value']:,.3g} {fig['unit']}".strip()
            note = fig["note"].replace("|", "/")
            lines.append(
                f"| {name} | {fig['label']} | {value} | {fig['target'] or ''} | "
                f"{marks[fig['passed']]} | {note} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/run.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--quick", action="store_true", help="smaller sizes (3-5 minutes on 2 cores)"
    )
    parser.add_argument("--json-only", action="store_true", help="print only the JSON object")
    parser.add_argument(
        "--only", help=f"comma-separated benchmarks to run (default all: {','.join(BENCHMARKS)})"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--markdown", metavar="FILE", help="also write the figures as a Markdown table to FILE"
    )
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # smoke test
    args = parser.parse_args(argv)
    names = None
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in BENCHMARKS]
        if unknown:
            parser.error(f"unknown benchmark {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")

    begin = time.perf_counter()

    def progress(message: str) -> None:  # each step with the seconds since the start
        if not args.json_only:
            print(f"· {time.perf_counter() - begin:6.1f}s {message}", file=sys.stderr, flush=True)

    sizes = TINY if args.tiny else (QUICK if args.quick else FULL)
    report = run_all(sizes, names, progress)
    if not args.json_only:
        render_table(report)
    if args.markdown:
        Path(args.markdown).write_text(to_markdown(report), encoding="utf-8")
    print(json.dumps(report, indent=2))
    return 1 if args.check and not report["summary"]["all_passed"] else 0


if __name__ == "__main__":
    sys.exit(main())
