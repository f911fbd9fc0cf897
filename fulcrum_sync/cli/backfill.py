"""``backfill``: sync and analyse a range of periods; resumable and shardable."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import typer

from fulcrum_sync.cli._common import (
    Output,
    begin,
    emit,
    finish,
    handle_errors,
    parse_grain,
    stop_on_sigterm,
)
from fulcrum_sync.cli._deps import deps_of
from fulcrum_sync.cli._options import (
    GRAIN_HELP,
    GRAIN_METAVAR,
    ForceOption,
    JsonOption,
    MetricOption,
    TenantOption,
    WorkersOption,
)
from fulcrum_sync.cli._push import observe
from fulcrum_sync.domain import BackfillRequest, InputError, grain_names, parse_period


@handle_errors
def backfill(
    ctx: typer.Context,
    grain: Annotated[
        str | None,
        typer.Option(
            "--grain",
            "-g",
            metavar=GRAIN_METAVAR,
            help=f"{GRAIN_HELP}. Not needed with --resume, which takes the recorded one.",
        ),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            "--start",
            metavar="PERIOD",
            help="First period, inclusive (2025-07-01, 2025-W27, 2025-07).",
        ),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option(
            "--end", metavar="PERIOD", help="Last period, inclusive (same forms as --start)."
        ),
    ] = None,
    tenant: TenantOption = None,
    metric: MetricOption = None,
    patterns: Annotated[
        bool | None,
        typer.Option(
            "--patterns/--no-patterns", help="Run patterns for every period (default: yes)."
        ),
    ] = None,
    workers: WorkersOption = None,
    shard: Annotated[
        str | None,
        typer.Option(
            "--shard",
            metavar="I/N",
            help="i/n: this process takes every n-th context starting at i. Default: from "
            "JOB_COMPLETION_INDEX and FULCRUM_SYNC_SHARD_COUNT (Kubernetes Indexed Jobs).",
        ),
    ] = None,
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume",
            metavar="ID",
            help="Resume the backfill with this id; does only what is left. Its grain, range "
            "and filters come from the record: options that contradict them are refused.",
        ),
    ] = None,
    force: ForceOption = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan and write nothing.")
    ] = False,
    json_out: JsonOption = False,
) -> None:
    """Sync and analyse a range of periods; resumable by id and shardable across pods.

    Each context's range is fetched in as few source queries as the source allows, then
    patterns run for every period on data as of that period.

    Example: fulcrum-sync backfill --grain day --start 2025-07-01 --end 2025-09-30 --workers 4
    """
    from fulcrum_sync.render import backfill as render
    from fulcrum_sync.render.console import SyncProgress, print_json
    from fulcrum_sync.services import backfill as svc

    output = begin(ctx, json_out=json_out, job=True)
    deps = deps_of(ctx)
    settings = deps.get_settings()
    grain_value = parse_grain(grain)
    n_workers = workers or settings.workers
    shard_of = svc.parse_shard(shard, shard_count=settings.shard_count)
    if resume is None:
        if grain_value is None:
            raise InputError(f"missing --grain: backfill needs --grain {grain_names()}")
        if start is None or end is None:
            raise InputError("backfill needs --start and --end (or --resume ID)")
        request = BackfillRequest(
            grain=grain_value,
            start=parse_period(grain_value, start),
            end=parse_period(grain_value, end),
            tenant=tenant,
            metric=metric,
            patterns=True if patterns is None else patterns,
            workers=n_workers,
            shard=shard_of,
            force=force,
            dry_run=dry_run,
        )
        request.validate(settings.history_start, settings.now())  # before touching the database
        engine = deps.get_engine(workers=n_workers, pooled=True)
    else:
        engine = deps.get_engine(workers=n_workers, pooled=True)
        recorded = svc.resumed_request(
            engine,
            resume,
            grain=grain_value,
            start=start,
            end=end,
            tenant=tenant,
            metric=metric,
            patterns=patterns,
        )
        request = replace(recorded, workers=n_workers, shard=shard_of, force=force, dry_run=dry_run)
    if dry_run:
        plan = svc.make_plan(engine, settings, request).plan
        if output is Output.TABLE:
            render.print_plan(plan)
        else:
            print_json(render.plan_json(plan))
        return
    source = deps.get_source(long_run=True)  # a blip of the source does not end a backfill
    with (
        stop_on_sigterm(deps.stop) as stop,
        SyncProgress(enabled=not json_out, label="run keys") as bar,
    ):
        result = svc.run(
            engine,
            source,
            settings,
            request,
            stop=stop,
            on_progress=bar.update,
            on_plan=render.print_started,
        )
    observe(ctx, result)  # for the metrics pushed as the command ends
    emit(
        output,
        data=lambda: render.result_json(result),
        table=lambda: render.print_result(result),
        event="backfill finished",
        fields=lambda: render.result_json(result),
    )
    if output is Output.LOG:
        render.print_summary_to_stderr(result)  # one plain line for CI logs
    finish(result.outcome)
