"""Print the ``status`` and ``runs`` reports."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from rich.markup import escape

from fulcrum_sync.domain import Problem, RunDetail, StatusReport, format_period
from fulcrum_sync.render.console import (
    Column,
    print_fitted,
    print_table,
    status_style,
    stdout_console,
)
from fulcrum_sync.render.numbers import format_number
from fulcrum_sync.render.table import command_lines


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if isinstance(value, datetime) else str(value or "")


RUN_COLUMNS = (
    Column("run id"),
    Column("command"),
    Column("arguments", drop=2, fold=True),
    Column("host", drop=4),
    Column("started (UTC)"),
    Column("duration", "right", drop=3),
    Column("outcome"),
)


def print_runs(rows: Sequence[dict[str, Any]], title: str = "Recent runs") -> None:
    """Print invocations, newest first (run ids as their first 8 characters: `runs show`
    takes them)."""
    print_fitted(
        stdout_console(),
        title,
        RUN_COLUMNS,
        [
            (
                r["run_id"][:8],
                escape(r["command"]),
                escape(_arguments_text(r.get("arguments") or {})),
                escape(r["host"]),
                _when(r["started_at"]),
                f"{r['duration_seconds']:.1f}s" if r.get("duration_seconds") is not None else "",
                status_style(r.get("outcome") or ""),
            )
            for r in rows
        ],
        hidden="--json",
    )


def _arguments_text(arguments: dict[str, Any], short_ids: bool = True) -> str:
    """``grain=day period=2025-09-30``; ids (a backfill's) as their first 8 characters, as
    ``runs`` shows run ids, unless ``short_ids`` is false."""
    shown = {k: v for k, v in arguments.items() if v not in (None, False, [], {})}
    return " ".join(f"{k}={_short_id(v) if short_ids else v}" for k, v in shown.items())


def _short_id(value: Any) -> Any:
    text = str(value)
    return text[:8] if _UUID.fullmatch(text) else value


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


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


KEY_COLUMNS = (
    Column("period", drop=3),
    Column("kind", drop=6),
    Column("key"),
    Column("status"),
    Column("tries", "right", drop=4),
    Column("time", "right", drop=2),
    Column("counts", drop=5, fold=True),
    Column("error", fold=True),
)


def print_run_detail(detail: RunDetail) -> None:
    """Print one invocation, then one line per run key it worked."""
    out = stdout_console()
    run = detail.run
    duration = run.get("duration_seconds")
    out.print(
        f"[bold]Run {run['run_id']}[/bold]  {escape(run['command'])}  "
        f"{status_style(run.get('outcome') or '')}"
    )
    lines = [
        ("arguments", _arguments_text(run.get("arguments") or {}, short_ids=False) or "none"),
        ("host", f"{run['host']} (pid {run['pid']})"),
        ("started", f"{_when(run['started_at'])} UTC"),
        (
            "finished",
            f"{_when(run['finished_at'])} UTC after {duration:.1f}s"
            if run.get("finished_at") and duration is not None
            else "not finished",
        ),
        ("summary", _counts_text(run.get("summary") or {}) or "none"),
    ]
    for label, text in lines:
        out.print(f"  {label:<10} {escape(text)}")
    if not detail.keys:
        hint = ""
        if run["command"] in ("sync", "patterns", "backfill"):
            hint = " (keys it skipped as done belong to the run that did them)"
        out.print(f"No run keys were worked by this run{hint}.")
        return
    keys = sorted(detail.keys, key=_key_order)
    names = _key_names([k["run_key"] for k in keys])
    rows = [
        (
            str(k["period"]),
            k["kind"],
            escape(name),
            status_style(k["status"]),
            k["attempts"],
            f"{k['duration_seconds']:.2f}s" if k.get("duration_seconds") is not None else "",
            escape(_counts_text(k.get("counts") or {})),
            escape(k.get("error") or ""),
        )
        for k, name in zip(keys, names, strict=True)
    ]
    print_fitted(out, f"{len(rows)} run keys", KEY_COLUMNS, rows)
    by_status: dict[str, int] = {}
    for k in detail.keys:
        by_status[k["status"]] = by_status.get(k["status"], 0) + 1
    out.print(", ".join(f"{n} {s}" for s, n in sorted(by_status.items())) + ".")


def _key_order(key: dict[str, Any]) -> tuple[Any, ...]:
    """Per period and context: the sync key, then its pattern keys."""
    period, sync_first = str(key["period"]), key["kind"] != "sync"
    return (period, key["tenant"], key["metric_id"], sync_first, key["run_key"])


def _key_names(run_keys: list[str]) -> list[str]:
    """Short names: ``acme::orders`` for a sync key (kind and period have columns); a pattern
    key right under its context's line shows only ``  · pattern[:dimension]``."""
    names = []
    previous = None
    for run_key in run_keys:
        parts = run_key.split(":", 3)
        name = parts[3] if len(parts) == 4 else run_key
        tenant, _, rest = name.partition("::")
        metric, _, pattern = rest.partition("::")
        context = (parts[1:3], f"{tenant}::{metric}")
        names.append(f"  · {pattern}" if pattern and context == previous else name)
        if not pattern:
            previous = context
    return names


def _counts_text(counts: dict[str, Any]) -> str:
    """``{"rows_stored": 1200, "patterns": {"succeeded": 3, ...}}`` -> ``stored 1,200 ...``."""
    parts = []
    for key, value in counts.items():
        name = key.removeprefix("rows_").replace("_", " ")
        if isinstance(value, dict):
            inner = ", ".join(
                f"{k} {_counts_text(v) if isinstance(v, dict) else _plain(v)}"
                for k, v in value.items()
            )
            parts.append(f"{name} ({inner})" if inner else "")
        elif isinstance(value, list):
            if value:
                parts.append(f"{name} {', '.join(str(v) for v in value)}")
        elif value not in (None, ""):
            parts.append(f"{name} {_plain(value)}")
    return "; ".join(p for p in parts if p)


def _plain(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return format_number(value)
    return str(value)
