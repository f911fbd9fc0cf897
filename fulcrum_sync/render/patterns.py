"""Print pattern runs, the pattern registry and stored pattern results."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from fulcrum_sync.domain import (
    Grain,
    PatternRunResult,
    PatternsRunResult,
    SkipReason,
    format_period,
)
from fulcrum_sync.jsonable import jsonable
from fulcrum_sync.render.console import status_style, stdout_console
from fulcrum_sync.render.numbers import format_field
from fulcrum_sync.render.table import Column, print_fitted


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


RUN_COLUMNS = (
    Column("context"),
    Column("pattern"),
    Column("dimension", drop=2),
    Column("status"),
    Column("detail", fold=True),
)
SPEC_COLUMNS = (
    Column("name"),
    Column("version", drop=3),
    Column("grains", drop=2),
    Column("data needed", drop=4),
    Column("lookback (periods)", drop=5),
    Column("what it does", fold=True),
)


def print_patterns_result(result: PatternsRunResult) -> None:
    """Print one row per pattern run, then failures and a closing line."""
    out = stdout_console()
    req = result.request
    rows = [
        (
            escape(c.context.to_string()),
            escape(p.pattern),
            escape(p.dimension or ""),
            status_style(p.status),
            escape(p.skip_reason or (p.error or "")[:120]),
        )
        for c in sorted(result.contexts, key=lambda c: c.context)
        for p in c.patterns
    ]
    print_fitted(
        out,
        f"patterns {req.grain.value} {format_period(req.grain, req.period)}",
        RUN_COLUMNS,
        rows,
        hidden="--json",
    )
    patterns = [p for c in result.contexts for p in c.patterns]
    if any(p.skip_reason == SkipReason.ALREADY_DONE for p in patterns):
        out.print("already done: another run did these; use --force to run them again.")
    out.print(
        f"Run {result.run_id}: {result.outcome} ({len(result.contexts)} contexts; "
        f"{totals_text(patterns)})."
    )


def totals_text(patterns: Iterable[PatternRunResult]) -> str:
    """``3 succeeded, 2 skipped (already done)``: the outcome words, with why a pattern was
    skipped because of its run key (as sync words it); the same words as ``--json``."""
    counts: dict[str, int] = {}
    for p in patterns:
        word = f"{p.status} ({p.skip_reason})" if p.skip_reason else p.status
        counts[word] = counts.get(word, 0) + 1
    return ", ".join(f"{n} {word}" for word, n in sorted(counts.items())) or "no patterns"


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
    print_fitted(
        stdout_console(),
        "Patterns",
        SPEC_COLUMNS,
        [
            (
                s.name,
                s.version,
                ", ".join(g.value for g in Grain if g in s.grains),
                ", ".join(sorted(s.needs)),
                ", ".join(f"{g.value} {n}" for g, n in s.lookback.items()),
                escape(s.description),
            )
            for s in specs
        ],
        hidden="--json",
    )


def print_pattern_results(
    context: str, grain: Grain, rows: Sequence[dict[str, Any]], *, paged: bool = False
) -> None:
    """Print stored results readably: a tree per pattern (and dimension), numbers formatted,
    lists of records as tables (or one line per record when a table would not fit).

    :param paged: on a terminal, show the report in a pager (rich's, i.e. $PAGER or less);
        piped or redirected output is printed as it is.
    """
    out = stdout_console()
    if not rows:
        out.print(
            f"No pattern results stored for {escape(context)} at grain {grain.value} "
            "(with these filters)."
        )
        return
    if paged and out.is_terminal:
        with out.pager(styles=True):
            _print_results(out, context, grain, rows)
    else:
        _print_results(out, context, grain, rows)


def _print_results(
    out: Console, context: str, grain: Grain, rows: Sequence[dict[str, Any]]
) -> None:
    period = rows[0]["analysis_period"]
    out.print(f"[bold]{escape(context)}[/bold] {grain.value} {period}: {len(rows)} results")
    for row in rows:
        dim = escape(f" [{row['dimension']}]") if row["dimension"] not in (None, "none") else ""
        tree = Tree(
            f"[bold]{escape(row['pattern'])}{dim}[/bold] v{escape(str(row['version']))} "
            f"{status_style(row['status'])}  window {row['window_start']}..{row['window_end']}"
        )
        if row["error"]:
            err = row["error"]
            tree.add(Text(f"{err.get('type')}: {err.get('message')}"))
        if row["result"]:
            result = {k: v for k, v in row["result"].items() if k not in _SKIP}
            _add_items(tree, result, out.width - _INDENT)
        out.print()
        out.print(tree)


_SKIP = {"analysis_period", "grain", "window_start", "window_end", "settings"}


def _label(key: str) -> str:
    return key.replace("_", " ")


_INDENT = 4  # columns each tree level takes


def _add_items(node: Tree, data: dict[str, Any], room: int) -> None:
    """Add one branch per key: scalars as ``key: value``, mappings as sub-trees, lists of
    records as tables. ``room`` is the width left for a branch's children."""
    for key, value in data.items():
        if isinstance(value, dict):
            _add_items(node.add(f"[bold]{escape(_label(key))}[/bold]"), value, room - _INDENT)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            branch = node.add(f"[bold]{escape(_label(key))}[/bold] ({len(value)})")
            _add_records(branch, value, room - _INDENT)
        elif isinstance(value, list):
            shown = ", ".join(format_field(key, v) for v in value) if value else "none"
            node.add(Text(f"{_label(key)}: {shown}"))
        else:
            node.add(Text(f"{_label(key)}: {format_field(key, value)}"))


def _add_records(node: Tree, records: list[dict[str, Any]], room: int) -> None:
    """A table of records if it fits beside the tree; otherwise one wrapped line per record."""
    keys = list(dict.fromkeys(k for r in records for k in r))
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for i, key in enumerate(keys):
        numeric = any(isinstance(r.get(key), int | float) for r in records)
        table.add_column(_label(key), justify="right" if numeric and i else "left", no_wrap=True)
    for record in records:
        table.add_row(*(_cell(key, record.get(key)) for key in keys))
    measure = Console(width=10_000)
    if Measurement.get(measure, measure.options, table).maximum <= room:
        node.add(table)
        return
    head, *rest = keys
    for record in records:
        text = Text()
        text.append(format_field(head, record.get(head)), style="bold")
        for key in rest:
            if not isinstance(record.get(key), dict | list):
                text.append(f" · {_label(key)} {format_field(key, record.get(key))}")
        node.add(text)


def _cell(key: str, value: Any) -> Text:
    if isinstance(value, dict | list):
        return Text(json.dumps(value, default=str))
    return Text(format_field(key, value))
