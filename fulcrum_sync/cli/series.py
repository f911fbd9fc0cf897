"""``series show``: a context's stored values as a table and sparkline, CSV or JSON."""

from __future__ import annotations

from typing import Annotated

import typer

from fulcrum_sync.cli._common import begin, handle_errors
from fulcrum_sync.cli._deps import deps_of
from fulcrum_sync.cli._options import (
    OUTPUT_PANEL,
    DimensionOption,
    FromOption,
    GrainOption,
    JsonOption,
    ToOption,
    in_range,
)
from fulcrum_sync.cli.complete import complete_contexts
from fulcrum_sync.domain import Grain, InputError, MetricContext, SeriesRequest, period_range

series_app = typer.Typer(help="Look at stored time series.", no_args_is_help=True)


@series_app.command("show")
@handle_errors
def series_show(
    ctx: typer.Context,
    context: Annotated[
        str,
        typer.Argument(
            metavar="TENANT::METRIC",
            help="A context: tenant::metric, e.g. acme::new_revenue.",
            autocompletion=complete_contexts,
        ),
    ],
    grain: GrainOption,
    dimension: DimensionOption = None,
    last: Annotated[
        int | None,
        typer.Option(
            "--last",
            "-n",
            metavar="N",
            callback=in_range(1, 100_000),
            help="The last N periods (1 to 100,000) up to the latest stored (default 30 without "
            "--from/--to).",
        ),
    ] = None,
    first: FromOption = None,
    until: ToOption = None,
    csv_out: Annotated[
        bool,
        typer.Option(
            "--csv", help="Write CSV (full precision) to stdout.", rich_help_panel=OUTPUT_PANEL
        ),
    ] = False,
    json_out: JsonOption = False,
) -> None:
    """Show a context's stored values: the base series, or one dimension's slices.

    On a terminal: a sparkline per series and the values; --csv and --json for scripts
    (CSV columns date,value or date,dimension,slice,value).

    Example: fulcrum-sync series show acme::new_revenue --grain day --last 14
    """
    from fulcrum_sync.render import series as render
    from fulcrum_sync.render.console import print_json
    from fulcrum_sync.services.operate import series as svc

    mctx = MetricContext.from_string(context)  # validate everything before any I/O
    grain_value = Grain.parse(grain)
    start, end = period_range(grain_value, first, until)
    if last is not None and (first or until):
        raise InputError("--last and --from/--to name the range twice: give one of them")
    if csv_out and json_out:
        raise InputError("--csv and --json both claim stdout: give one of them")
    request = SeriesRequest(mctx.tenant, mctx.metric, grain_value, dimension, last, start, end)
    begin(ctx, json_out=json_out or csv_out)
    values = svc.show(deps_of(ctx).get_engine(), request)
    if csv_out:
        render.write_csv(values)
    elif json_out:
        print_json(render.series_json(values))
    else:
        render.print_series(values)
