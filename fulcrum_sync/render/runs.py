"""Print ``runs`` (recent invocations) and ``runs show`` (one invocation and its run keys)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from rich.markup import escape
from rich.table import Table

from fulcrum_sync.domain import RunDetail
from fulcrum_sync.render.console import status_style, stdout_console
from fulcrum_sync.render.numbers import format_number
from fulcrum_sync.render.table import Column, print_fitted


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
        ("summary", "" if run.get("summary") else "none"),
        *summary_lines(run.get("summary") or {}, depth=1),
    ]
    out.print(_labelled(lines), highlight=False)
    if not detail.keys:
        hint = ""
        if run["command"] in ("sync", "patterns", "backfill"):
            hint = "; the keys it skipped (already done) belong to the run that did them"
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
    print_fitted(out, f"{len(rows)} run keys", KEY_COLUMNS, rows, hidden="--json")
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


def _labelled(lines: Sequence[tuple[str, str]]) -> Table:
    """Label and value side by side; a long value wraps under itself, not under the label."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="ellipsis")
    for label, text in lines:
        grid.add_row(f"  {escape(label)}", escape(text))
    return grid


def summary_lines(summary: dict[str, Any], depth: int = 0) -> list[tuple[str, str]]:
    """One labelled line per field of a run's summary (``stored``, ``1,224``), indented by
    ``depth``; a field holding a mapping of mappings or lists (``catch_up``) gets a line per
    entry under it. Empty fields (``None``, ``[]``) are left out. Top-level labels are field
    names made readable; ids and names are shown as stored (``acme::active_users``)."""
    lines: list[tuple[str, str]] = []
    for key, value in summary.items():
        label = "  " * depth + (key if "::" in key else _label(key))
        if isinstance(value, dict) and any(isinstance(v, dict | list) for v in value.values()):
            inner = summary_lines(value, depth + 1)
            if inner:
                lines += [(label, ""), *inner]
        elif text := _value_text(value):
            lines.append((label, text))
    return lines


def _counts_text(counts: dict[str, Any]) -> str:
    """``{"rows_stored": 1200, "patterns": {"succeeded": 3}}`` -> ``stored 1,200; patterns
    (succeeded 3)``."""
    parts = []
    for key, value in counts.items():
        text = _value_text(value)
        if text:
            parts.append(
                f"{_label(key)} ({text})" if isinstance(value, dict) else f"{_label(key)} {text}"
            )
    return "; ".join(parts)


def _label(key: str) -> str:
    """A field name made readable (``rows_stored`` -> ``stored``); never used on an id."""
    return key.removeprefix("rows_").replace("_", " ")


_LIST_SHOWN = 2  # a longer list of periods shows as first..last (n)


def _value_text(value: Any) -> str:
    """A value as text; empty for nothing. Mapping keys are ids or names: shown as they are."""
    if value is None or value == "" or value == [] or value == {}:
        return ""
    if isinstance(value, dict):
        parts = ((k, _value_text(v)) for k, v in value.items())
        nested = any(isinstance(v, dict | list) for v in value.values())
        return ("; " if nested else ", ").join(
            f"{k}: {t}" if nested else f"{k} {t}" for k, t in parts if t
        )
    if isinstance(value, list):
        items = [_value_text(v) for v in value]
        if len(items) > _LIST_SHOWN and all(_is_period(v) for v in value):
            return f"{items[0]}..{items[-1]} ({len(items)})"
        return ", ".join(i for i in items if i)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return format_number(value)
    return str(value)


def _is_period(value: Any) -> bool:
    return isinstance(value, date) or (
        isinstance(value, str)
        and re.fullmatch(r"\d{4}-\d{2}(-\d{2})?|\d{4}-W\d{2}", value) is not None
    )
