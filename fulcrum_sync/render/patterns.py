"""Print pattern runs, the pattern registry and stored pattern results."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.markup import escape

from fulcrum_sync.domain import Grain, PatternsRunResult, format_period
from fulcrum_sync.jsonable import jsonable
from fulcrum_sync.render.console import print_table, status_style, stdout_console


def patterns_result_json(result: PatternsRunResult) -> dict[str, Any]:
    """A ``patterns`` run as JSON-ready data."""
    req = result.request
    return {
        "run_id": result.run_id,
        "grain": req.grain.value,
        "period": req.period.isoformat(),
        "period_label": format_period(req.grain, req.period),
        "outcome": result.outcome,
        "contexts": [
            {
                "context": c.context.to_string(),
                "status": c.status,
                "counts": c.pattern_counts(),
                "patterns": jsonable(c.patterns),
            }
            for c in sorted(result.contexts, key=lambda c: c.context)
        ],
    }


def print_patterns_result(result: PatternsRunResult) -> None:
    """Print one row per pattern run, then failures and a closing line."""
    out = stdout_console()
    req = result.request
    rows = [
        (
            c.context.to_string(),
            p.pattern,
            p.dimension or "",
            status_style(p.status),
            (p.error or "")[:120],
        )
        for c in sorted(result.contexts, key=lambda c: c.context)
        for p in c.patterns
    ]
    print_table(
        out,
        f"patterns {req.grain.value} {format_period(req.grain, req.period)}",
        ["context", "pattern", "dimension", "status", "detail"],
        rows,
    )
    totals = result.totals()
    counts = ", ".join(f"{n} {s}" for s, n in sorted(totals.items())) or "no patterns"
    out.print(f"Run {result.run_id}: {result.outcome} ({len(result.contexts)} contexts; {counts}).")


def pattern_spec_json(spec: Any) -> dict[str, Any]:
    """A registry entry as JSON-ready data."""
    return {
        "name": spec.name,
        "version": spec.version,
        "grains": sorted(g.value for g in spec.grains),
        "needs": sorted(spec.needs),
        "lookback": {g.value: n for g, n in spec.lookback.items()},
        "defaults": jsonable(dict(spec.defaults)),
        "description": spec.description,
    }


def print_pattern_specs(specs: Sequence[Any]) -> None:
    """Print the registry."""
    print_table(
        stdout_console(),
        "Patterns",
        ["name", "version", "grains", "data needed", "lookback (periods)", "what it does"],
        [
            (
                s.name,
                s.version,
                ", ".join(g.value for g in Grain if g in s.grains),
                ", ".join(sorted(s.needs)),
                ", ".join(f"{g.value} {n}" for g, n in s.lookback.items()),
                s.description,
            )
            for s in specs
        ],
    )


def print_pattern_results(context: str, grain: Grain, rows: Sequence[dict[str, Any]]) -> None:
    """Print stored results readably: one block per pattern (and dimension)."""
    out = stdout_console()
    if not rows:
        out.print(f"No pattern results stored for {context} at grain {grain.value}.")
        return
    period = rows[0]["analysis_period"]
    out.print(f"[bold]{context}[/bold] {grain.value} {period}: {len(rows)} results")
    for row in rows:
        dim = escape(f" [{row['dimension']}]") if row["dimension"] not in (None, "none") else ""
        out.print(
            f"\n[bold]{row['pattern']}{dim}[/bold] v{row['version']} "
            f"{status_style(row['status'])}  window {row['window_start']}..{row['window_end']}"
        )
        if row["error"]:
            err = row["error"]
            out.print(f"  {err.get('type')}: {err.get('message')}", markup=False)
        if row["result"]:
            for key, value in _summary_items(row["result"]):
                out.print(f"  {key}: {value}", markup=False)


_SKIP = {"analysis_period", "grain", "window_start", "window_end", "settings"}


def _summary_items(result: dict[str, Any]) -> list[tuple[str, str]]:
    items = []
    for key, value in result.items():
        if key in _SKIP:
            continue
        text = json.dumps(value, default=str) if isinstance(value, dict | list) else str(value)
        items.append((key, text if len(text) <= 160 else text[:157] + "..."))
    return items
