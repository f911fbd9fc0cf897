"""``discover``: store the catalog's active contexts and report what changed."""

from __future__ import annotations

from typing import Annotated

import typer

from fulcrum_sync.cli._common import begin, emit, finish, handle_errors, parse_grain
from fulcrum_sync.cli._deps import deps_of
from fulcrum_sync.cli._options import GRAIN_METAVAR, JsonOption
from fulcrum_sync.domain import grain_names


@handle_errors
def discover(
    ctx: typer.Context,
    grain: Annotated[
        str | None,
        typer.Option(
            "--grain",
            "-g",
            metavar=GRAIN_METAVAR,
            help=f"Only this grain ({grain_names()}). Default: all.",
        ),
    ] = None,
    check_source: Annotated[
        bool,
        typer.Option(
            "--check-source",
            help="Also ask the source's metadata whether every member exists, and probe "
            "whether it keeps tenants apart (identical answers for different tenants: exit 1).",
        ),
    ] = False,
    json_out: JsonOption = False,
) -> None:
    """Store the catalog's active contexts and report what was added, deactivated, unchanged.

    Deactivated contexts keep their stored data. With an empty catalog and the demo source,
    the demo catalog is loaded first.

    Example: fulcrum-sync discover --grain day
    """
    from fulcrum_sync.render import discover as render
    from fulcrum_sync.services.contexts import discover as svc

    output = begin(ctx, json_out=json_out, job=True)
    deps = deps_of(ctx)
    grain_value = parse_grain(grain)
    settings = deps.get_settings()
    engine = deps.get_engine()
    source = deps.get_source() if check_source else None
    result = svc.discover(
        engine, settings.source, settings.history_start, grain_value, source, settings.now()
    )
    emit(
        output,
        data=lambda: result,
        table=lambda: render.print_discover(result, verbose=deps.verbose),
        event="discover finished",
        fields=lambda: {
            **render.discover_summary_fields(result),
            "outcome": result.outcome,
        },
    )
    finish(result.outcome)
