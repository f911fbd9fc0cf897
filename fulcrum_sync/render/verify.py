"""Print ``verify``: one line per difference (a few per context), then a summary."""

from __future__ import annotations

from typing import Any

from rich.markup import escape

from fulcrum_sync.domain.verify import VerifyResult
from fulcrum_sync.jsonable import jsonable
from fulcrum_sync.render.console import stdout_console
from fulcrum_sync.render.numbers import format_int

LINES_PER_CONTEXT = 20  # beyond them a context's differences are counted (all are in --json)


def summary_line(result: VerifyResult) -> str:
    """``verify day: 9 contexts compared (of 9 active), 1 differs, 0 not compared; ...``."""
    figures = result.job_figures()
    compared = len(result.contexts)
    scope = f" (a sample of {result.selected} active)" if result.request.sample else ""
    cache = sum(c.cache_rows or 0 for c in result.contexts)
    return (
        f"verify {result.request.grain.value}: {format_int(compared)} contexts compared{scope}, "
        f"{format_int(figures['differs'])} differ, {format_int(figures['error'])} not compared; "
        f"{format_int(len(result.differences))} differences in "
        f"{format_int(sum(c.source_rows for c in result.contexts))} source, "
        f"{format_int(sum(c.state_rows for c in result.contexts))} state and "
        f"{format_int(cache)} cache rows"
    )


def print_verify(result: VerifyResult) -> None:
    """Print each difference (capped per context), then the summary; nothing was changed."""
    out = stdout_console()
    for check in result.contexts:
        for diff in check.differences[:LINES_PER_CONTEXT]:
            out.print(escape(diff.line()), soft_wrap=True, highlight=False)
        more = len(check.differences) - LINES_PER_CONTEXT
        if more > 0:
            out.print(f"{escape(check.context)}: {format_int(more)} more differences (see --json)")
    style = "red" if result.differences else "green"
    out.print(f"[{style}]{escape(summary_line(result))}[/{style}]")  # wraps at spaces
    out.print("Read-only: nothing was changed.", style="dim")


def verify_json(result: VerifyResult) -> dict[str, Any]:
    """The whole result, each difference with its one-line form."""
    return {
        "outcome": result.outcome,
        "summary": summary_line(result),
        **jsonable(result),
        "lines": [d.line() for d in result.differences],
    }


def verify_summary_fields(result: VerifyResult) -> dict[str, Any]:
    """The closing ``verify finished`` log event's fields (the differences' lines included)."""
    return {
        "grain": result.request.grain.value,
        "outcome": result.outcome,
        "counts": result.job_figures(),
        "summary": summary_line(result),
        "differences": [d.line() for d in result.differences[:1000]],
    }
