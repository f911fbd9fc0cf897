"""Print ``status``: the health, one headline per cause, freshness and the last runs; the
details (every run, failing series, context and problem) only with ``--verbose``.

Lines are wrapped between words to the console's width; a command is never split: it goes
on a line of its own when it does not fit beside its note.
"""

from __future__ import annotations

import textwrap
from typing import Any

from rich.console import Console
from rich.text import Text

from fulcrum_sync.domain import Headline, Health, StatusReport, format_period
from fulcrum_sync.render.console import stdout_console
from fulcrum_sync.render.table import command_lines

INDENT = "    "
_HEALTH_TEXT = {
    Health.HEALTHY: ("healthy (exit 0): nothing to do", "green"),
    Health.HEALING: ("healing (exit 0): the next scheduled run fixes all of it", "yellow"),
    Health.NEEDS_ATTENTION: ("needs attention (exit 1)", "red"),
    Health.NOTHING_TO_WATCH: ("nothing to watch (exit 2)", "red"),
}
SHOWN_CONTEXTS = 10


def print_status(report: StatusReport, verbose: bool = False) -> None:
    """Print the headlines (and with ``verbose`` every detail after them)."""
    out = stdout_console()
    width = max(out.width, 40)
    text, style = _HEALTH_TEXT[report.health]
    people = sum(h.needs_person for h in report.headlines)
    if report.health is Health.NEEDS_ATTENTION:
        text += f": {people} of {len(report.headlines)} causes need a person"
    _say(out, f"Status at {report.generated_at:%Y-%m-%d %H:%M} UTC: {text}", width, style)
    for headline in report.headlines:
        _headline(out, headline, width, verbose)
    _say(out, _freshness(report), width)
    runs = report.runs[:3]
    if runs:
        _say(out, "Last runs:", width)
        for run in runs:
            _say(out, INDENT + _run_line(run), width, indent=INDENT * 2)
    if verbose:
        from fulcrum_sync.render.reports import print_status as print_details

        out.print()
        print_details(report)
    elif report.headlines:
        _say(out, "Details: fulcrum-sync status --verbose", width)


def _headline(out: Console, h: Headline, width: int, verbose: bool) -> None:
    mark, style = ("✗", "red") if h.needs_person else ("~", "yellow")
    _say(out, f"{mark} {h.text}", width, style, indent=INDENT)
    if h.command:
        together = f"{INDENT}{h.note}; now: {h.command}"
        if len(together) <= width:
            _say(out, together, width)
        else:
            _say(out, INDENT + h.note, width, indent=INDENT)
            for line in command_lines(h.command, width, f"{INDENT}now: "):  # pasteable as is
                out.print(line, markup=False, highlight=False, soft_wrap=True)
    else:
        _say(out, INDENT + h.note, width, indent=INDENT)
    if verbose and h.contexts:
        more = len(h.contexts) - SHOWN_CONTEXTS
        names = ", ".join(h.contexts[:SHOWN_CONTEXTS]) + (f" and {more} more" if more > 0 else "")
        _say(out, f"{INDENT}contexts: {names}", width, indent=INDENT * 2)


def _freshness(report: StatusReport) -> str:
    parts = [
        f"{f.grain.value} {f.up_to_date}/{f.contexts} up to date "
        f"(expected {format_period(f.grain, f.expected_period)})"
        for f in report.freshness
        if f.contexts
    ]
    return "Freshness: " + ("; ".join(parts) if parts else "no active contexts")


def _run_line(run: dict[str, Any]) -> str:
    grain = (run.get("arguments") or {}).get("grain")
    started = run.get("started_at")
    when = f"{started:%Y-%m-%d %H:%M} UTC" if started is not None else "?"
    seconds = run.get("duration_seconds")
    took = f" ({seconds:.1f}s)" if isinstance(seconds, int | float) else ""
    what = " ".join(str(x) for x in (run.get("command"), grain) if x)
    return f"{str(run['run_id'])[:8]} {what} {run.get('outcome') or 'running'} {when}{took}"


def _say(out: Console, line: str, width: int, style: str = "", indent: str = "") -> None:
    """Print ``line`` wrapped between words to ``width`` (later lines indented)."""
    lead = len(line) - len(line.lstrip(" "))
    wrapped = textwrap.wrap(
        line,
        width,
        subsequent_indent=indent or " " * lead,
        break_long_words=False,
        break_on_hyphens=False,
    ) or [""]
    for part in wrapped:
        out.print(Text(part, style=style), soft_wrap=True)
