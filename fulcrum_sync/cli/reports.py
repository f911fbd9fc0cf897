"""``status``, ``runs`` and ``runs show``: what ran, what is failing, how fresh the data is."""

from __future__ import annotations

from typing import Annotated

import typer

from fulcrum_sync.cli._common import HEALTH_CODES, Output, begin, handle_errors, parse_grain
from fulcrum_sync.cli._deps import deps_of
from fulcrum_sync.cli._options import (
    GRAIN_METAVAR,
    OUTPUT_PANEL,
    GrainFilterOption,
    JsonOption,
    in_range,
)
from fulcrum_sync.cli.complete import (
    complete_commands,
    complete_grains,
    complete_outcomes,
    complete_status_formats,
)
from fulcrum_sync.domain import RUN_OUTCOMES, Health, InputError, RunsQuery


@handle_errors
def status(
    ctx: typer.Context,
    grain: Annotated[
        str | None,
        typer.Option(
            "--grain",
            "-g",
            metavar=GRAIN_METAVAR,
            help="Only this grain. Default: all.",
            autocompletion=complete_grains,
        ),
    ] = None,
    json_out: JsonOption = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="After the headlines, every run, failing series, context and problem.",
            rich_help_panel=OUTPUT_PANEL,
        ),
    ] = False,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            metavar="[table|json|openmetrics]",
            help="table (default), json (as --json) or openmetrics: freshness gauges per grain "
            "for a node-exporter textfile collector.",
            rich_help_panel=OUTPUT_PANEL,
            autocompletion=complete_status_formats,
        ),
    ] = None,
) -> None:
    """Say whether the jobs are healthy: one headline per cause, with the command to run.

    Each headline groups one cause (an endpoint unreachable, refused credentials, contexts
    behind or never synced, unfinished or missing pattern results, stale cache tables,
    abandoned runs) and says whether the next scheduled run fixes it. `--json` has a
    top-level `health`: healthy, healing, needs_attention or nothing_to_watch. Exit 0
    healthy, or healing by itself at the next scheduled run; 1 a person must act; 2 nothing
    to watch (no database, schema, catalog or run; status never creates a database).

    Example: fulcrum-sync status --grain day --verbose
    """
    from fulcrum_sync.jsonable import jsonable
    from fulcrum_sync.render import status as render
    from fulcrum_sync.render.console import print_json
    from fulcrum_sync.services.operate import status as svc

    if fmt not in (None, "table", "json", "openmetrics"):
        raise InputError(f"invalid --format {fmt!r}: expected table, json or openmetrics")
    output = begin(ctx, json_out=json_out or fmt == "json")
    deps = deps_of(ctx)
    settings = deps.get_settings()
    try:
        if deps.engine is None:
            deps.check_database_choice()  # a production source names its database
            svc.check_sqlite_file(settings.database_url.get_secret_value())
        report = svc.status(
            deps.get_engine(migrate=False),
            parse_grain(grain),
            now=settings.now(),
            target=settings.cache_target,
            default_endpoint=deps.default_endpoint(),
        )
    except svc.NothingToWatchError as exc:
        if output is not Output.JSON:
            raise
        print_json({"health": Health.NOTHING_TO_WATCH, "reason": str(exc)})
        raise typer.Exit(HEALTH_CODES[Health.NOTHING_TO_WATCH]) from None
    if fmt == "openmetrics":
        from fulcrum_sync.render.openmetrics import status_openmetrics

        typer.echo(status_openmetrics(report), nl=False)
    elif output is Output.JSON:
        print_json({"health": report.health, **jsonable(report)})
    else:
        render.print_status(report, verbose=verbose or deps.verbose)
    raise typer.Exit(HEALTH_CODES[report.health])


runs_app = typer.Typer(invoke_without_command=True)


@runs_app.callback(invoke_without_command=True)
@handle_errors
def runs(
    ctx: typer.Context,
    limit: Annotated[
        int,
        typer.Option(
            "--limit",
            "-n",
            metavar="N",
            callback=in_range(1, 10_000),
            help="How many runs, 1 to 10,000.",
        ),
    ] = 20,
    command: Annotated[
        str | None,
        typer.Option(
            "--command",
            "-c",
            metavar="COMMAND",
            help="Only runs of this command (sync, backfill, cache-load, ...).",
            autocompletion=complete_commands,
        ),
    ] = None,
    outcome: Annotated[
        str | None,
        typer.Option(
            "--outcome",
            "-o",
            metavar="OUTCOME",
            help=f"Only runs that ended so: {', '.join(RUN_OUTCOMES)}.",
            autocompletion=complete_outcomes,
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="WHEN",
            help="Only runs started since: 2025-09-30, 2025-09-30T06:00 (UTC) or an age "
            "(30m, 12h, 7d, 2w).",
        ),
    ] = None,
    grain: GrainFilterOption = None,
    json_out: JsonOption = False,
) -> None:
    """List recent invocations: command, arguments, host, start, duration, outcome.

    Filters combine: `--outcome failed --since 7d --grain day` lists last week's failed day
    runs. `runs show ID` shows one invocation and each of its run keys.

    Example: fulcrum-sync runs --outcome failed --since 7d --command sync
    """
    if ctx.invoked_subcommand is not None:
        return
    from fulcrum_sync.render import runs as render
    from fulcrum_sync.render.console import print_json
    from fulcrum_sync.services.operate import status as svc

    output = begin(ctx, json_out=json_out)
    deps = deps_of(ctx)
    query = RunsQuery.parse(
        limit=limit,
        command=command,
        outcome=outcome,
        since=since,
        grain=grain,
        now=deps.get_settings().now(),
    )
    rows = svc.list_runs(deps.get_engine(), query)
    if output is Output.JSON:
        print_json(rows)
    else:
        render.print_runs(rows)


@runs_app.command("show")
@handle_errors
def runs_show(
    ctx: typer.Context,
    run_id: Annotated[
        str, typer.Argument(metavar="RUN_ID", help="A run id, or its first characters (4 or more).")
    ],
    json_out: JsonOption = False,
) -> None:
    """Show one invocation: command, arguments, host, times, outcome and summary, then each
    run key it worked with its status, attempts, counts, duration and error.

    Example: fulcrum-sync runs show 3f1c2a9e
    """
    from fulcrum_sync.render import runs as render
    from fulcrum_sync.render.console import print_json
    from fulcrum_sync.services.operate import status as svc

    svc.check_run_prefix(run_id)  # validate before touching the database
    output = begin(ctx, json_out=json_out)
    detail = svc.show_run(deps_of(ctx).get_engine(), run_id)
    if output is Output.JSON:
        print_json(detail)
    else:
        render.print_run_detail(detail)
