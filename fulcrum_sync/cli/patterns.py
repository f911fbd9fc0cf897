"""``patterns run`` (patterns on stored data), ``patterns list`` and ``patterns show``.

``patterns --grain G`` without ``run`` is the older spelling of ``patterns run`` and still works.
"""

from __future__ import annotations

from typing import Annotated

import typer

from fulcrum_sync.cli._common import (
    Output,
    begin,
    emit,
    finish,
    handle_errors,
    resolve_period,
    stop_on_sigterm,
)
from fulcrum_sync.cli._deps import deps_of
from fulcrum_sync.cli._options import (
    GRAIN_METAVAR,
    GrainOption,
    JsonOption,
    MetricOption,
    PeriodOption,
    TenantOption,
    WorkersOption,
)
from fulcrum_sync.cli._push import observe
from fulcrum_sync.cli.complete import complete_contexts, complete_grains, complete_patterns
from fulcrum_sync.domain import (
    Grain,
    InputError,
    MetricContext,
    PatternsRequest,
    grain_names,
    last_complete_period,
)

patterns_app = typer.Typer(invoke_without_command=True)

PatternOption = Annotated[
    str | None,
    typer.Option(
        "--pattern",
        metavar="PATTERN",
        help="Only this pattern (see `patterns list`).",
        autocompletion=complete_patterns,
    ),
]
OptionalGrain = Annotated[
    str | None,
    typer.Option(
        "--grain",
        "-g",
        metavar=GRAIN_METAVAR,
        help=f"{grain_names()} (required to run).",
        autocompletion=complete_grains,
    ),
]
PatternsForce = Annotated[
    bool, typer.Option("--force", help="Run again patterns that already succeeded.")
]


@patterns_app.callback(invoke_without_command=True)
@handle_errors
def patterns(
    ctx: typer.Context,
    grain: OptionalGrain = None,
    period: PeriodOption = None,
    tenant: TenantOption = None,
    metric: MetricOption = None,
    pattern: PatternOption = None,
    force: PatternsForce = False,
    workers: WorkersOption = None,
    json_out: JsonOption = False,
) -> None:
    """Run patterns on stored data (`patterns run`), list them, show stored results.

    `patterns --grain G ...` (without `run`) still runs them, as earlier versions did; the
    documented spelling is `patterns run --grain G ...`.

    Example: fulcrum-sync patterns run --grain day --pattern forecasting
    """
    if ctx.invoked_subcommand is not None:
        return
    if grain is None:
        raise InputError(
            f"missing --grain: `patterns run` needs --grain {grain_names()} "
            "(`patterns list` and `patterns show` are the other subcommands)"
        )
    _run(ctx, grain, period, tenant, metric, pattern, force, workers, json_out)


@patterns_app.command("run")
@handle_errors
def patterns_run(
    ctx: typer.Context,
    grain: GrainOption,
    period: PeriodOption = None,
    tenant: TenantOption = None,
    metric: MetricOption = None,
    pattern: PatternOption = None,
    force: PatternsForce = False,
    workers: WorkersOption = None,
    json_out: JsonOption = False,
) -> None:
    """Run the enabled patterns of every active context on data already stored (no fetching).

    Each pattern runs under its own run key; one failing does not stop the others. Too
    little data is stored as an insufficient_data result and reported as skipped; a pattern
    another run already did is skipped (already done) unless --force.

    Example: fulcrum-sync patterns run --grain day --period 2025-07-13 --pattern forecasting
    """
    _run(ctx, grain, period, tenant, metric, pattern, force, workers, json_out)


def _run(
    ctx: typer.Context,
    grain: str,
    period: str | None,
    tenant: str | None,
    metric: str | None,
    pattern: str | None,
    force: bool,
    workers: int | None,
    json_out: bool,
) -> None:
    # Before begin(): the patterns and pandas import with the command, collection held.
    from fulcrum_sync.render import patterns as render
    from fulcrum_sync.render.console import SyncProgress
    from fulcrum_sync.services.patterns import run as svc

    output = begin(ctx, json_out=json_out, job=True)

    deps = deps_of(ctx)
    settings = deps.get_settings()
    grain_value = Grain.parse(grain)
    request = PatternsRequest(
        grain=grain_value,
        period=resolve_period(grain_value, period, settings.history_start, settings.now()),
        tenant=tenant,
        metric=metric,
        pattern=pattern,
        force=force,
        workers=workers or settings.workers,
    )
    if pattern is not None:
        svc.get_pattern(pattern)  # fail on an unknown name before touching the database
    engine = deps.get_engine(workers=request.workers, pooled=True)
    with stop_on_sigterm(deps.stop) as stop, SyncProgress(enabled=not json_out) as progress:
        result = svc.run(
            engine,
            settings,
            request,
            stop=stop,
            on_result=progress.advance,
            on_start=progress.start,
            overrides=deps.patterns,
        )
    summary = render.patterns_result_json(result)
    observe(ctx, result)  # for the metrics pushed as the command ends
    emit(
        output,
        data=lambda: summary,
        table=lambda: render.print_patterns_result(result),
        event="patterns finished",
        fields=lambda: {
            "run_id": summary["run_id"],
            "grain": summary["grain"],
            "period": summary["period"],
            "outcome": summary["outcome"],
            "counts": result.totals(),
        },
    )
    finish(result.outcome)


@patterns_app.command("list")
@handle_errors
def patterns_list(json_out: JsonOption = False) -> None:
    """List the registered patterns: name, version, grains, data needed, lookback.

    Example: fulcrum-sync patterns list
    """
    from fulcrum_sync.render import patterns as render
    from fulcrum_sync.render.console import print_json
    from fulcrum_sync.services.patterns.run import list_patterns

    specs = list_patterns()
    if json_out:
        print_json([render.pattern_spec_json(s) for s in specs])
    else:
        render.print_pattern_specs(specs)


@patterns_app.command("show")
@handle_errors
def patterns_show(
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
    period: Annotated[
        str | None,
        typer.Option(
            "--period", "-p", metavar="PERIOD", help="Analysis period. Default: the latest stored."
        ),
    ] = None,
    pattern: PatternOption = None,
    dimension: Annotated[
        str | None,
        typer.Option(
            "--dimension",
            "-d",
            metavar="DIMENSION",
            help="Only results for this dimension (dimension_analysis runs once per dimension).",
        ),
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Show a context's stored pattern results for one period.

    On a terminal a long report opens in a pager ($PAGER, else less); piped, it is printed.

    Example: fulcrum-sync patterns show acme::new_revenue --grain day --pattern forecasting
    """
    from fulcrum_sync.render import patterns as render
    from fulcrum_sync.render.console import print_json
    from fulcrum_sync.services.patterns import run as svc

    MetricContext.from_string(context)  # validate before touching the database
    grain_value = Grain.parse(grain)
    output = begin(ctx, json_out=json_out)
    deps = deps_of(ctx)
    settings = deps.get_settings()
    now = settings.now()
    wanted = None
    if period is not None:
        wanted = resolve_period(grain_value, period, settings.history_start, now)
    latest = last_complete_period(grain_value, now)
    rows = svc.show(
        deps.get_engine(),
        context,
        grain_value,
        wanted,
        latest,
        pattern=pattern,
        dimension=dimension,
    )
    if output is Output.JSON:
        print_json(rows)
    else:
        render.print_pattern_results(context, grain_value, rows, paged=True)
