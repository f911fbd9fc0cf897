"""``status`` and ``runs``: what ran, what is failing, how fresh the data is."""

from __future__ import annotations

from typing import Annotated

import typer

from fulcrum_sync.cli._common import (
    JsonOption,
    Output,
    begin,
    deps_of,
    finish,
    handle_errors,
    parse_grain,
)


@handle_errors
def status(
    ctx: typer.Context,
    grain: Annotated[
        str | None, typer.Option("--grain", "-g", help="Only this grain. Default: all.")
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Show recent runs, what is failing and since when, and how fresh each grain is.

    Exit 0 when nothing is failing or behind, 1 otherwise (so a check can alert on it).

    Example: fulcrum-sync status --grain day
    """
    from fulcrum_sync.render import reports as render
    from fulcrum_sync.render.console import print_json
    from fulcrum_sync.services import status as svc

    output = begin(ctx, json_out=json_out)
    deps = deps_of(ctx)
    report = svc.status(deps.get_engine(), parse_grain(grain), now=deps.get_settings().now())
    if output is Output.JSON:
        print_json(report)
    else:
        render.print_status(report)
    finish("partial" if svc.unhealthy(report) else "succeeded")


@handle_errors
def runs(
    ctx: typer.Context,
    limit: Annotated[
        int,
        typer.Option("--limit", "-n", min=1, max=10_000, help="How many runs (at most 10,000)."),
    ] = 20,
    command: Annotated[
        str | None, typer.Option("--command", "-c", help="Only runs of this command.")
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """List recent invocations: command, arguments, host, start, duration, outcome.

    Example: fulcrum-sync runs --limit 5 --command sync
    """
    from fulcrum_sync.render import reports as render
    from fulcrum_sync.render.console import print_json
    from fulcrum_sync.services import status as svc

    output = begin(ctx, json_out=json_out)
    rows = svc.list_runs(deps_of(ctx).get_engine(), limit, command)
    if output is Output.JSON:
        print_json(rows)
    else:
        render.print_runs(rows)
