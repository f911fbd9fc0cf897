"""Print ``state prune``: the rows per table it would remove, and what it removed."""

from __future__ import annotations

from rich.console import Console

from fulcrum_sync.domain.retention import PRUNE_PARTS, PruneResult
from fulcrum_sync.render.console import stdout_console
from fulcrum_sync.render.numbers import format_int
from fulcrum_sync.render.table import Column, print_fitted

KEPT = (
    "Kept: stored series, each context's latest pattern result and latest succeeded run key, "
    "unfinished backfill plans, active contexts' cache-load records, run keys a running "
    "process holds."
)


def _rows(counts: dict[str, int]) -> list[tuple[str, str, str]]:
    return [(PRUNE_PARTS[part], part, format_int(n)) for part, n in counts.items()]


def _table(out: Console, counts: dict[str, int], header: str) -> None:
    columns = (Column("table"), Column("what", drop=1), Column(header, "right"))
    print_fitted(out, None, columns, _rows(counts))


def print_prune_preview(result: PruneResult) -> None:
    """Print what a prune would remove: rows per table, and the keys it leaves alone."""
    out = stdout_console()
    verb = "would remove" if result.request.dry_run else "removes"
    out.print(f"History before {result.cutoff.day.isoformat()} {verb}:")
    _table(out, result.rows, "rows")
    _print_held(out, result)


def print_prune(result: PruneResult) -> None:
    """Print how a prune ended: dry run, nothing to do, declined, or rows removed."""
    out = stdout_console()
    before = result.cutoff.day.isoformat()
    if result.request.dry_run:
        print_prune_preview(result)
        out.print("Dry run: nothing was changed.")
    elif not result.total:
        out.print(f"Nothing to prune before {before}.")
        _print_held(out, result)
    elif not result.applied:
        out.print("Aborted: nothing was changed.")
    else:
        out.print(f"Pruned history before {before}:")
        _table(out, result.deleted, "rows removed")
        _print_held(out, result)
        out.print(
            f"Run {result.run_id}: succeeded ({format_int(result.batches)} transactions of at "
            f"most {format_int(result.request.batch_rows)} rows)."
        )
    out.print(KEPT, style="dim")


def _print_held(out: Console, result: PruneResult) -> None:
    if result.held:
        out.print(
            f"[yellow]{format_int(result.held)} old run keys are held by a running process and "
            "were left alone.[/yellow]"
        )
