"""The ``fulcrum-sync`` command line: each command parses, calls one service, renders.

One module per command family; ``_common`` holds what they share, including the one
function that maps outcomes and errors to exit codes.
"""

from __future__ import annotations

import gc
import os
from typing import Annotated

import typer

from fulcrum_sync import __version__
from fulcrum_sync.cli._common import check_log_format, handle_errors
from fulcrum_sync.cli._deps import deps_of
from fulcrum_sync.cli._options import OUTPUT_PANEL
from fulcrum_sync.cli._root import RootGroup
from fulcrum_sync.cli.complete import complete_log_formats
from fulcrum_sync.collector import hold as hold_collection
from fulcrum_sync.libwarnings import route_warnings

app = typer.Typer(
    cls=RootGroup,
    name="fulcrum-sync",
    help="Keep a metrics platform's time series, Snowflake cache and patterns fresh.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"fulcrum-sync {__version__}")
        raise typer.Exit()


@app.callback()
@handle_errors
def root(
    ctx: typer.Context,
    log_format: Annotated[
        str | None,
        typer.Option(
            "--log-format",
            metavar="[auto|rich|json]",
            help="auto (JSON lines when not on a terminal), rich or json; accepted before or "
            "after the command. Default: FULCRUM_SYNC_LOG_FORMAT or auto.",
            rich_help_panel=OUTPUT_PANEL,
            autocompletion=complete_log_formats,
        ),
    ] = None,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="Log debug details; list every pattern context in discover.",
            rich_help_panel=OUTPUT_PANEL,
        ),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the version (fulcrum-sync X.Y.Z) and exit.",
        ),
    ] = False,
) -> None:
    """Keep a metrics platform's time series, Snowflake cache and patterns fresh."""
    route_warnings()  # before any library runs: its warnings go through the log, no paths
    deps = deps_of(ctx)
    deps.log_format = check_log_format(log_format)
    deps.verbose = verbose
    ctx.call_on_close(deps.close)


# The commands are listed in cli/_root.py (COMMANDS): each loads when it is looked up.


def main() -> None:
    """Run the CLI (the ``fulcrum-sync`` script and ``python -m fulcrum_sync``)."""
    hold_collection()  # until the command is set up: collector.py
    # numpy's OpenBLAS starts a thread per core as it loads: ~30 ms of CPU on 2 cores, more
    # on a large node, for arrays of a few hundred values in a process whose workers are
    # threads already (issue 26). An operator's own setting wins.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        app()
    finally:
        # The process ends here: spare the interpreter its final collections of everything
        # it imported (with pandas and statsmodels, ~0.35 s of CPU per process). The command's
        # dependencies were closed with its context; atexit handlers (logging) still run.
        gc.freeze()
