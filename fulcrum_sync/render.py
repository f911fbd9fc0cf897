"""Print results for people (rich tables) or machines (JSON); nothing else."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from enum import Enum
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from fulcrum_sync.domain import ContextResult, SyncRequest, SyncRunResult, format_period


def stdout_console() -> Console:
    """A console on stdout (plain and wide when not a terminal, so pipes and logs read well)."""
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=200)
    return console


def stderr_console() -> Console:
    return Console(stderr=True, soft_wrap=True, highlight=False)


def to_jsonable(value: Any) -> Any:
    """Turn dataclasses, pydantic models, dates and enums into JSON-ready values."""
    if hasattr(value, "model_dump"):  # a pydantic model
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, float) and value != value:  # NaN
        return None
    return value


def print_json(value: Any) -> None:
    """Print ``value`` as one JSON document on stdout."""
    sys.stdout.write(json.dumps(to_jsonable(value), indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()


def print_table(
    console: Console,
    title: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    caption: str | None = None,
) -> None:
    """Print a rich table; ``None`` cells show as an empty cell."""

    table = Table(title=title, caption=caption, show_lines=False, title_justify="left")
    for name in columns:
        numeric = name.lower().startswith(("rows", "count", "n ", "duration", "size"))
        table.add_column(name, justify="right" if numeric else "left", overflow="fold")
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    console.print(table)


def status_style(status: str) -> str:
    """Colour a status word for rich output."""
    colour = {
        "succeeded": "green",
        "ok": "green",
        "skipped": "yellow",
        "partial": "yellow",
        "failed": "red",
        "running": "cyan",
    }.get(status, "white")
    return f"[{colour}]{status}[/{colour}]"


class SyncProgress:
    """A rich progress bar over contexts, shown only on a terminal."""

    def __init__(self, enabled: bool = True, label: str = "contexts") -> None:
        console = stderr_console()
        self._enabled = enabled and console.is_terminal
        self._label = label
        self._progress: Any = None
        self._task: Any = None
        self._console = console

    def __enter__(self) -> SyncProgress:

        if self._enabled:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[last]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=self._console,
                transient=True,
            )
            self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(None, None, None)

    def start(self, total: int) -> None:
        if self._progress is not None:
            self._task = self._progress.add_task(self._label, total=total, last="")

    def update(self, done: int, total: int) -> None:
        """Set absolute progress (backfills report done / total keys)."""
        if self._progress is not None:
            if self._task is None:
                self._task = self._progress.add_task(self._label, total=total, last="")
            self._progress.update(self._task, completed=done, total=total)

    def advance(self, result: Any) -> None:
        if self._progress is not None and self._task is not None:
            name = getattr(result, "context", "")
            status = getattr(result, "status", "")
            self._progress.update(self._task, advance=1, last=f"{name} {status}")


def _window_text(result: ContextResult) -> str:
    return result.base.window.to_string() if result.base else ""


def sync_result_json(result: SyncRunResult) -> dict[str, Any]:
    """The sync summary as JSON-ready data (the same facts as the table)."""
    return {
        "run_id": result.run_id,
        "grain": result.request.grain.value,
        "period": result.request.period.isoformat(),
        "period_label": format_period(result.request.grain, result.request.period),
        "outcome": result.outcome,
        "contexts": [
            {
                "context": c.context.to_string(),
                "run_key": c.run_key,
                "status": c.status,
                "skip_reason": c.skip_reason,
                "sync_type": c.sync_types,
                "window": _window_text(c),
                "rows_stored": c.rows_stored,
                "rows_skipped": c.rows_skipped,
                "duration_seconds": round(c.duration_seconds, 4),
                "error": c.error,
                "series": to_jsonable(c.series),
                "patterns": to_jsonable(c.patterns),
            }
            for c in sorted(result.contexts, key=lambda c: c.context)
        ],
    }


def sync_summary_fields(summary: dict[str, Any]) -> dict[str, Any]:
    """The closing ``sync finished`` log event's fields, from :func:`sync_result_json`."""
    contexts = summary["contexts"]
    by_status: dict[str, int] = {}
    for c in contexts:
        by_status[c["status"]] = by_status.get(c["status"], 0) + 1
    return {
        "run_id": summary["run_id"],
        "grain": summary["grain"],
        "period": summary["period"],
        "outcome": summary["outcome"],
        "counts": {
            "contexts": len(contexts),
            **by_status,
            "rows_stored": sum(c["rows_stored"] for c in contexts),
            "rows_skipped": sum(c["rows_skipped"] for c in contexts),
        },
        "duration": round(sum(c["duration_seconds"] for c in contexts), 3),
        "failed": [c["context"] for c in contexts if c["status"] in ("failed", "partial")],
    }


def print_sync_result(result: SyncRunResult) -> None:
    """Print the sync summary table and one closing line."""
    out = stdout_console()
    req = result.request
    rows = []
    for c in sorted(result.contexts, key=lambda c: c.context):
        dims_ok = sum(1 for d in c.dimensions if d.success)
        p = c.pattern_counts()
        rows.append(
            (
                c.context.to_string(),
                c.sync_types,
                _window_text(c),
                c.rows_stored,
                c.rows_skipped,
                f"{dims_ok}/{len(c.dimensions_failed)}" if c.status != "skipped" else "",
                f"{p['succeeded']}/{p['skipped']}/{p['failed']}" if c.patterns else "",
                f"{c.duration_seconds:.2f}s",
                status_style(c.status) + (f" ({c.skip_reason})" if c.skip_reason else ""),
            )
        )
    print_table(
        out,
        f"sync {req.grain.value} {format_period(req.grain, req.period)}",
        [
            "context",
            "sync type",
            "window",
            "rows stored",
            "rows skipped",
            "dims ok/failed",
            "patterns ok/skip/fail",
            "duration",
            "status",
        ],
        rows,
    )
    for c in result.failed:
        out.print(f"[red]failed[/red] {c.context}: {escape(c.error or 'see patterns')}")
    by_status: dict[str, int] = {}
    for c in result.contexts:
        by_status[c.status] = by_status.get(c.status, 0) + 1
    counts = ", ".join(f"{n} {s}" for s, n in sorted(by_status.items())) or "no contexts"
    out.print(f"Run {result.run_id}: {result.outcome} ({counts}).")


def print_sync_plan(request: SyncRequest, planned: Sequence[Any]) -> None:
    """Print what a dry run would fetch."""
    out = stdout_console()
    print_table(
        out,
        f"sync --dry-run {request.grain.value} {format_period(request.grain, request.period)}",
        ["context", "series", "sync type", "window"],
        [
            (p.context, p.dimension or "(base)", p.sync_type.value, p.window.to_string())
            for p in planned
        ],
    )
    contexts = len({p.context for p in planned})
    out.print(f"Dry run: {contexts} contexts, {len(planned)} series; nothing was written.")


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


def print_status(report: Any) -> None:
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
