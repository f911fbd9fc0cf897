"""Print ``doctor``: one line per check with ✓, !, ✗ or -, and the fix under each problem."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from fulcrum_sync.domain.doctor import FAIL, OK, SKIP, WARN, DoctorReport
from fulcrum_sync.render.console import stdout_console

MARKS = {
    OK: "[green]✓[/green]",
    WARN: "[yellow]![/yellow]",
    FAIL: "[red]✗[/red]",
    SKIP: "[dim]-[/dim]",
}


def print_doctor(report: DoctorReport, verbose: bool = False) -> None:
    """Print every check; ``verbose`` adds every setting (secrets as set or unset)."""
    out = stdout_console()
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    for check in report.checks:
        text = escape(check.detail)
        if check.fix and check.status in (FAIL, WARN):
            text += f"\n[bold]fix:[/bold] {escape(check.fix)}"
        grid.add_row(MARKS[check.status], escape(check.name) + " ", text)
    out.print(grid, highlight=False)
    if verbose and report.settings:
        out.print("\nSettings (secrets shown as set or unset):")
        for name, value in report.settings.items():
            source = "" if name in report.settings_set else " (default)"
            out.print(f"  {escape(name)}={escape(value)}{source}", highlight=False)
    failed = [c for c in report.checks if c.status == FAIL]
    warned = [c for c in report.checks if c.status == WARN]
    if failed:
        kind = "unreachable" if report.outcome == "failed" else "configuration"
        problems = f"{len(failed)} problem{'s' if len(failed) > 1 else ''}"
        out.print(f"\n[red]{problems}[/red] ({kind}); fix and run doctor again.")
    elif warned:
        warnings = f"{len(warned)} warning{'s' if len(warned) > 1 else ''}"
        out.print(f"\nEverything needed works; {warnings}.")
    else:
        out.print("\nAll checks passed.")
