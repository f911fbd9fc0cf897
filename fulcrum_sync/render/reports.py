"""Print the ``status`` and ``runs`` reports."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from rich.markup import escape

from fulcrum_sync.domain import StatusReport, format_period
from fulcrum_sync.render.console import print_table, status_style, stdout_console


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if isinstance(value, datetime) else str(value or "")


def print_runs(rows: Sequence[dict[str, Any]], title: str = "Recent runs") -> None:
    """Print invocations, newest first."""
    print_table(
        stdout_console(),
        title,
        ["run id", "command", "arguments", "host", "started (UTC)", "duration", "outcome"],
        [
            (
                r["run_id"][:8],
                r["command"],
                _arguments_text(r.get("arguments") or {}),
                r["host"],
                _when(r["started_at"]),
                f"{r['duration_seconds']:.1f}s" if r.get("duration_seconds") is not None else "",
                status_style(r.get("outcome") or ""),
            )
            for r in rows
        ],
    )


def _arguments_text(arguments: dict[str, Any]) -> str:
    shown = {k: v for k, v in arguments.items() if v not in (None, False, [], {})}
    return " ".join(f"{k}={v}" for k, v in shown.items())


def print_status(report: StatusReport) -> None:
    """Print the status report: runs, failures, freshness."""
    out = stdout_console()
    print_runs(report.runs)
    if report.failing_series:
        print_table(
            out,
            "Failing series",
            ["context", "grain", "series", "failing since (UTC)", "last success", "last error"],
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
            ["context", "pattern", "grain", "dimension", "period", "error"],
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
            ["grain", "context", "latest stored", "expected", "periods behind"],
            [
                (
                    g,
                    b["context"],
                    b["latest"] or "nothing stored",
                    b["expected"],
                    b["periods_behind"] if b["periods_behind"] is not None else "",
                )
                for g, b in behind
            ],
        )


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        return escape(f"{error.get('type', '')}: {error.get('message', '')}"[:200])
    return escape(str(error or "")[:200])
