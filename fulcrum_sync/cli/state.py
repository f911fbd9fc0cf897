"""``state show``, ``state reset`` and ``state prune``: inspect, forget and bound what the state
database holds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

import typer

from fulcrum_sync.cli._common import Output, begin, finish, handle_errors, parse_grain
from fulcrum_sync.cli._deps import deps_of
from fulcrum_sync.cli._options import (
    OUTPUT_PANEL,
    DimensionOption,
    FromOption,
    GrainFilterOption,
    JsonOption,
    MetricOption,
    TenantOption,
    ToOption,
)
from fulcrum_sync.cli.complete import complete_what
from fulcrum_sync.domain import (
    WHAT_CHOICES,
    InputError,
    ResetRequest,
    ResetResult,
    RunOutcome,
    Scope,
    parse_what,
    period_range,
)
from fulcrum_sync.domain.retention import PruneRequest, PruneResult
from fulcrum_sync.services.deps import Deps

state_app = typer.Typer(
    help="Inspect and reset what the state database holds for a scope.", no_args_is_help=True
)


def _scope(
    tenant: str | None,
    metric: str | None,
    grain: str | None,
    dimension: str | None,
    first: str | None,
    last: str | None,
) -> Scope:
    grain_value = parse_grain(grain)
    start, end = period_range(grain_value, first, last)
    return Scope(tenant, metric, grain_value, dimension, start, end)


@state_app.command("show")
@handle_errors
def state_show(
    ctx: typer.Context,
    tenant: TenantOption = None,
    metric: MetricOption = None,
    grain: GrainFilterOption = None,
    dimension: DimensionOption = None,
    first: FromOption = None,
    last: ToOption = None,
    json_out: JsonOption = False,
) -> None:
    """Show what is stored for a scope, per context: each series' last sync (type, period,
    window, rows, when, error), run keys by status, pattern results present and periods
    missing one, and the last cache load.

    --from/--to narrow run keys and pattern results to those periods.

    Example: fulcrum-sync state show --tenant acme --metric orders --grain day
    """
    from fulcrum_sync.render import state as render
    from fulcrum_sync.render.console import print_json
    from fulcrum_sync.services.operate import state as svc

    scope = _scope(tenant, metric, grain, dimension, first, last)  # validate before any I/O
    output = begin(ctx, json_out=json_out)
    report = svc.show(deps_of(ctx).get_engine(), scope)
    if output is Output.JSON:
        print_json(report)
    else:
        render.print_state(report)


WhatOption = Annotated[
    list[str] | None,
    typer.Option(
        "--what",
        metavar=f"[{'|'.join(WHAT_CHOICES)}]",
        help="What to clear (repeat or comma-separate): sync-status (the next sync is FULL), "
        "run-keys (the next run does those periods again), series (stored values and their "
        "sync status), patterns (results and their keys), cache (load records), all.",
        autocompletion=complete_what,
    ),
]


@state_app.command("reset")
@handle_errors
def state_reset(
    ctx: typer.Context,
    what: WhatOption = None,
    tenant: TenantOption = None,
    metric: MetricOption = None,
    grain: GrainFilterOption = None,
    dimension: DimensionOption = None,
    first: FromOption = None,
    last: ToOption = None,
    everything: Annotated[
        bool,
        typer.Option("--all", help="Allow an empty scope: reset every context."),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be cleared; change nothing.")
    ] = False,
    json_out: Annotated[
        bool,
        typer.Option(
            "--json", help="Print JSON (needs --yes or --dry-run).", rich_help_panel=OUTPUT_PANEL
        ),
    ] = False,
) -> None:
    """Forget a scope's state so the tool redoes the work: show the rows each table would lose,
    ask, then clear them in one transaction, recorded as a run.

    An empty scope is refused unless --all. With --from/--to only per-period records are
    cleared (run keys, pattern results, stored values). Run keys a running process holds are
    left alone. Exit 0 done (or nothing to do), 1 declined, 2 bad usage, 3 database down.

    Example: fulcrum-sync state reset --tenant acme --metric orders --what sync-status --yes
    """
    from fulcrum_sync.render import state as render
    from fulcrum_sync.services.operate import state as svc

    scope = _scope(tenant, metric, grain, dimension, first, last)
    request = ResetRequest(scope, parse_what(what), dry_run=dry_run)
    request.check()

    _run_deleting(
        ctx,
        lambda deps, confirm: svc.reset(
            deps.get_engine(),
            request,
            everything=everything,
            lease_seconds=deps.get_settings().lease_seconds,
            confirm=confirm,
        ),
        (yes, dry_run, json_out),
        ask=(render.print_reset_preview, "Clear these rows?"),
        show=render.print_reset,
    )


_R = TypeVar("_R", ResetResult, PruneResult)


def _run_deleting(
    ctx: typer.Context,
    apply: Callable[[Deps, Callable[[_R], bool] | None], _R],
    flags: tuple[bool, bool, bool],
    *,
    ask: tuple[Callable[[_R], None], str],
    show: Callable[[_R], None],
) -> None:
    """What ``state reset`` and ``state prune`` share, given ``(--yes, --dry-run, --json)``:
    ``--json`` needs ``--yes`` or ``--dry-run``; unless ``--yes``, show the preview and ask
    the question (no answer is no); print the result; a declined deletion ends partial."""
    from fulcrum_sync.render.console import print_json

    yes, dry_run, json_out = flags
    if json_out and not (yes or dry_run):
        raise InputError("--json needs --yes or --dry-run: a confirmation prompt would mix with it")
    output = begin(ctx, json_out=json_out)
    preview, question = ask

    def confirm(result: _R) -> bool:
        preview(result)
        return _confirmed(question)

    result = apply(deps_of(ctx), None if yes else confirm)
    if output is Output.JSON:
        print_json(result)
    else:
        show(result)
    declined = result.total and not (result.applied or dry_run)
    finish(RunOutcome.PARTIAL if declined else RunOutcome.SUCCEEDED)


def _confirmed(question: str) -> bool:
    """Ask ``question``; no answer (end of input) is no."""
    try:
        return typer.confirm(question, default=False)
    except typer.Abort:
        return False


@state_app.command("prune")
@handle_errors
def state_prune(
    ctx: typer.Context,
    keep_days: Annotated[
        int,
        typer.Option(
            "--keep-days",
            metavar="N",
            help="Keep the history of the last N days (periods ending before are pruned).",
        ),
    ],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be removed; change nothing.")
    ] = False,
    json_out: Annotated[
        bool,
        typer.Option(
            "--json", help="Print JSON (needs --yes or --dry-run).", rich_help_panel=OUTPUT_PANEL
        ),
    ] = False,
) -> None:
    """Remove the run history older than N days: run records, run keys, superseded pattern
    results, finished backfill plans and the cache-load records of inactive contexts. Shows
    the rows per table, asks, then deletes in short transactions, recorded as a run.

    Never removed: stored series, each context's latest pattern result and latest succeeded
    run key, run keys a running process holds. Scheduled syncs prune by themselves
    (FULCRUM_SYNC_RETENTION_DAYS, default 90). Exit 0 done (or nothing to do), 1 declined,
    2 bad usage, 3 database down.

    Example: fulcrum-sync state prune --keep-days 90 --yes
    """
    from fulcrum_sync.render import retention as render
    from fulcrum_sync.services.operate import retention as svc

    request = PruneRequest(keep_days, dry_run=dry_run)
    request.check()

    _run_deleting(
        ctx,
        lambda deps, confirm: svc.prune(
            deps.get_engine(),
            request,
            now=deps.get_settings().now(),
            lease_seconds=deps.get_settings().lease_seconds,
            confirm=confirm,
        ),
        (yes, dry_run, json_out),
        ask=(render.print_prune_preview, "Remove these rows?"),
        show=render.print_prune,
    )
