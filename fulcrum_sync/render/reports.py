"""Print the ``status`` and ``runs`` reports."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from rich.markup import escape

from fulcrum_sync.domain import Problem, StatusReport, format_period
from fulcrum_sync.render.console import print_table, stdout_console
from fulcrum_sync.render.runs import print_runs
from fulcrum_sync.render.table import Column, command_lines


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if isinstance(value, datetime) else str(value or "")


def print_status(report: StatusReport) -> None:
    """Print the status report: runs, failures, freshness."""
    out = stdout_console()
    print_runs(report.runs)
    if report.failing_series:
        print_table(
            out,
            "Failing series",
            (
                Column("context"),
                Column("grain"),
                Column("series"),
                Column("failing since (UTC)", drop=2),
                Column("last success", drop=3),
                Column("last error", fold=True),
            ),
            [
                (
                    f"{r['tenant']}::{r['metric_id']}",
                    r["grain"],
                    r["dimension"] or "(base)",
                    _when(r["failing_since"]),
                    _when(r["last_success_at"]) or "never",
                    escape((r["error"] or "")[:200]),
                )
                for r in report.failing_series
            ],
        )
    else:
        out.print("No failing series.")
    if report.failing_patterns:
        print_table(
            out,
            "Failing patterns",
            (
                Column("context"),
                Column("pattern"),
                Column("grain"),
                Column("dimension", drop=3),
                Column("period", drop=2),
                Column("error", fold=True),
            ),
            [
                (
                    f"{r['tenant']}::{r['metric_id']}",
                    r["pattern"],
                    r["grain"],
                    r["dimension"],
                    str(r["analysis_period"]),
                    _error_text(r["error"]),
                )
                for r in report.failing_patterns
            ],
        )
    for backfill in getattr(report, "backfills", []) or []:
        out.print(
            f"Backfill {backfill['backfill_id'][:8]} {backfill['grain']} "
            f"{backfill['start']}..{backfill['end']}: {backfill['done']}/{backfill['total']} done, "
            f"{backfill['failed']} failed"
        )
    print_table(
        out,
        "Freshness",
        ["grain", "expected period", "contexts", "up to date", "behind", "patterns behind"],
        [
            (
                f.grain.value,
                format_period(f.grain, f.expected_period),
                f.contexts,
                f.up_to_date,
                len(f.behind),
                len(f.patterns_behind),
            )
            for f in report.freshness
        ],
    )
    behind = [(f.grain.value, b) for f in report.freshness for b in f.behind]
    if behind:
        print_table(
            out,
            "Contexts behind",
            (
                Column("grain"),
                Column("context"),
                Column("latest synced"),
                Column("expected", drop=2),
                Column("periods behind", "right"),
            ),
            [
                (
                    g,
                    b["context"],
                    b["latest"] or "never synced",
                    b["expected"],
                    b["periods_behind"] if b["periods_behind"] is not None else "",
                )
                for g, b in behind
            ],
        )
    print_problems(report.problems)


def print_problems(problems: Sequence[Problem]) -> None:
    """Print each problem with the command that fixes it (one line, to copy as it is) and
    whether the next scheduled run does it by itself."""
    out = stdout_console()
    if not problems:
        out.print("No problems: nothing to fix.")
        return
    out.print(f"[bold]Problems and fixes[/bold] ({len(problems)})")
    for p in problems:
        out.print(
            f"  [bold]{p.kind}[/bold] {p.grain.value} {escape(p.context)}: {escape(p.detail)}"
        )
        for line in command_lines(p.command, out.width, "    fix: "):
            out.print(line, markup=False, highlight=False, soft_wrap=True)
        out.print(f"    next scheduled run: {escape(p.schedule_note)}")


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        return escape(f"{error.get('type', '')}: {error.get('message', '')}"[:200])
    return escape(str(error or "")[:200])
