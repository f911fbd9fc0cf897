"""The options the commands share: grain, period, scope filters, output, workers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from fulcrum_sync.cli.complete import (
    complete_grains,
    complete_metrics,
    complete_tenants,
)
from fulcrum_sync.domain import (
    GRAIN_ALIASES,
    Grain,
    grain_names,
    period_examples,
)

SCOPE_PANEL = "Scope"
OUTPUT_PANEL = "Output"
GRAIN_METAVAR = f"[{'|'.join(Grain)}]"
GRAIN_HELP = f"{grain_names()} (aliases: {', '.join(GRAIN_ALIASES)})"

GrainOption = Annotated[
    str,
    typer.Option(
        "--grain",
        "-g",
        metavar=GRAIN_METAVAR,
        help=f"{GRAIN_HELP}.",
        autocompletion=complete_grains,
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON instead of tables.", rich_help_panel=OUTPUT_PANEL)
]
PeriodOption = Annotated[
    str | None,
    typer.Option(
        "--period",
        "-p",
        metavar="PERIOD",
        help=f"{period_examples()}; any date inside the period works. "
        "Default: the last complete period (UTC).",
    ),
]
TenantOption = Annotated[
    str | None,
    typer.Option(
        "--tenant",
        "-t",
        metavar="TENANT",
        help="Only this tenant.",
        rich_help_panel=SCOPE_PANEL,
        autocompletion=complete_tenants,
    ),
]
MetricOption = Annotated[
    str | None,
    typer.Option(
        "--metric",
        "-m",
        metavar="METRIC",
        help="Only this metric.",
        rich_help_panel=SCOPE_PANEL,
        autocompletion=complete_metrics,
    ),
]
GrainFilterOption = Annotated[
    str | None,
    typer.Option(
        "--grain",
        "-g",
        metavar=GRAIN_METAVAR,
        help=f"Only this grain (aliases: {', '.join(GRAIN_ALIASES)}). Default: all.",
        rich_help_panel=SCOPE_PANEL,
        autocompletion=complete_grains,
    ),
]
DimensionOption = Annotated[
    str | None,
    typer.Option(
        "--dimension",
        "-d",
        metavar="DIMENSION",
        help="Only this dimension's series (not the base series).",
        rich_help_panel=SCOPE_PANEL,
    ),
]
FromOption = Annotated[
    str | None,
    typer.Option(
        "--from",
        metavar="PERIOD",
        help="First period: 2025-07-13, 2025-W28 or 2025-07 (with --grain, any date inside).",
        rich_help_panel=SCOPE_PANEL,
    ),
]
ToOption = Annotated[
    str | None,
    typer.Option(
        "--to",
        metavar="PERIOD",
        help="Last period, inclusive (as --from).",
        rich_help_panel=SCOPE_PANEL,
    ),
]


def in_range(low: int, high: int | None = None) -> Callable[[int | None], int | None]:
    """An option callback refusing a number outside ``low..high`` (usage error, exit 2).

    Used instead of Click's ``min``/``max``, which show as ``<int range> [1<=x<=64]`` in help:
    the option shows ``N`` and says its range in words.
    """

    def check(value: int | None) -> int | None:
        if value is not None and (value < low or (high is not None and value > high)):
            expected = f"{low} to {high:,}" if high is not None else f"{low} or more"
            raise typer.BadParameter(f"{value} is out of range: expected {expected}")
        return value

    return check


WorkersOption = Annotated[
    int | None,
    typer.Option(
        "--workers",
        "-w",
        metavar="N",
        callback=in_range(1, 64),
        help="Contexts worked at once, 1 to 64; 1 runs everything in the main thread "
        "(debuggers). Default: FULCRUM_SYNC_WORKERS.",
    ),
]
ForceOption = Annotated[
    bool, typer.Option("--force", help="Run again run keys that already succeeded.")
]
