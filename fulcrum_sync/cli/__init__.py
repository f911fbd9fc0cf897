"""The ``fulcrum-sync`` command line: each command parses, calls one service, renders.

One module per command family; ``_common`` holds what they share, including the one
function that maps outcomes and errors to exit codes.
"""

from __future__ import annotations

from typing import Annotated

import typer

from fulcrum_sync.cli import admin, backfill, cache_load, discover, patterns, reports, sync
from fulcrum_sync.cli._common import deps_of

app = typer.Typer(
    name="fulcrum-sync",
    help="Keep a metrics platform's time series, Snowflake cache and patterns fresh.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def root(
    ctx: typer.Context,
    log_format: Annotated[
        str | None,
        typer.Option(
            "--log-format",
            help="auto (JSON lines when not on a terminal), rich or json. "
            "Default: FULCRUM_SYNC_LOG_FORMAT or auto.",
        ),
    ] = None,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", "-v", help="Log debug details; list every pattern context in discover."
        ),
    ] = False,
) -> None:
    """Keep a metrics platform's time series, Snowflake cache and patterns fresh."""
    deps = deps_of(ctx)
    if log_format is not None and log_format not in ("auto", "rich", "json"):
        raise typer.BadParameter(
            f"{log_format!r} is not one of auto, rich, json", param_hint="--log-format"
        )
    deps.log_format = log_format
    deps.verbose = verbose
    ctx.call_on_close(deps.close)


app.add_typer(admin.catalog_app, name="catalog")
app.add_typer(admin.db_app, name="db")
app.command()(discover.discover)
app.command()(sync.sync)
app.command()(reports.status)
app.command()(reports.runs)
app.command("cache-load")(cache_load.cache_load)
app.add_typer(patterns.patterns_app, name="patterns")
app.command()(backfill.backfill)


def main() -> None:
    """Run the CLI (the ``fulcrum-sync`` script and ``python -m fulcrum_sync``)."""
    app()
