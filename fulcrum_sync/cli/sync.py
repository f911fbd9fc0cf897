"""``sync``: sync every active context of a grain for one period, then run its patterns."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

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
    ForceOption,
    GrainOption,
    JsonOption,
    MetricOption,
    PeriodOption,
    TenantOption,
    WorkersOption,
    in_range,
)
from fulcrum_sync.cli._push import observe
from fulcrum_sync.domain import DependencyError, Grain, InputError, SyncRequest

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from fulcrum_sync.config import Settings
    from fulcrum_sync.domain import SyncRunResult


@handle_errors
def sync(
    ctx: typer.Context,
    grain: GrainOption,
    period: PeriodOption = None,
    tenant: TenantOption = None,
    metric: MetricOption = None,
    force_full: Annotated[
        bool,
        typer.Option(
            "--force-full",
            help="FULL sync every series (re-fetch history); implies --force, so periods "
            "already done are synced again.",
        ),
    ] = False,
    force: ForceOption = False,
    workers: WorkersOption = None,
    no_patterns: Annotated[
        bool, typer.Option("--no-patterns", help="Do not run the patterns after each sync.")
    ] = False,
    catch_up: Annotated[
        bool,
        typer.Option(
            "--catch-up",
            help="Also sync every period each context missed since its last successful sync, "
            "oldest first, fetched as one range; finish the recent periods' unfinished "
            "pattern keys. What the scheduled jobs run.",
        ),
    ] = False,
    max_periods: Annotated[
        int | None,
        typer.Option(
            "--max-periods",
            metavar="N",
            callback=in_range(1),
            help="With --catch-up: at most N (1 or more) periods per context in this run "
            "(default: 14 days, "
            "8 weeks, 3 months); the rest is logged as an error with the backfill for it.",
        ),
    ] = None,
    cache_load: Annotated[
        bool,
        typer.Option(
            "--cache-load",
            help="Load each context's cache table right after its sync and patterns succeed "
            "(only contexts whose series changed since their last load; "
            "target: FULCRUM_SYNC_CACHE_TARGET).",
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be fetched; write nothing.")
    ] = False,
    json_out: JsonOption = False,
) -> None:
    """Sync every active context of a grain for one period, then run its patterns.

    Per metric and per dimension the sync is FULL (no earlier success, --force-full, or a
    changed definition) or INCREMENTAL. --catch-up also syncs the periods a context missed
    (a day the cluster was down); --cache-load then loads its cache table. Exit 0 all
    succeeded, 1 some failed, 2 bad usage, 3 source or database unreachable.

    Example: fulcrum-sync sync --grain day --catch-up --cache-load
    """
    from fulcrum_sync.render import sync_fields
    from fulcrum_sync.render.console import SyncProgress, print_json
    from fulcrum_sync.services.run import sync as sync_service

    if max_periods is not None and not catch_up:
        raise InputError(f"--max-periods {max_periods} needs --catch-up (it bounds a catch-up)")
    output = begin(ctx, json_out=json_out, job=True)
    deps = deps_of(ctx)
    settings = deps.get_settings()
    grain_value = Grain.parse(grain)
    request = SyncRequest(
        grain=grain_value,
        period=resolve_period(grain_value, period, settings.history_start, settings.now()),
        tenant=tenant,
        metric=metric,
        force_full=force_full,
        force=force or force_full,  # a FULL re-fetch of a period already done is the point
        workers=workers or settings.workers,
        dry_run=dry_run,
        run_patterns=not no_patterns,
        catch_up=catch_up,
        max_periods=max_periods,
        cache_load=cache_load,
    )
    engine = deps.get_engine(workers=request.workers, pooled=True)
    if cache_load:
        deps.get_sinks()  # the target's settings are checked before any work, dry runs too
    if dry_run:
        planned = sync_service.plan(engine, settings, request)
        if output is Output.TABLE:
            from fulcrum_sync.render.sync import print_sync_plan

            print_sync_plan(request, planned)
        else:
            print_json({"request": request, "planned": planned})
        return
    with stop_on_sigterm(deps.stop) as stop, SyncProgress(enabled=not json_out) as progress:
        result = sync_service.run(
            request,
            deps,
            stop=stop,
            on_result=progress.advance,
            on_start=progress.start,
            keep_contexts=output is not Output.LOG,  # a job's log lines hold each context
        )
    if period is None and result.outcome != "interrupted":  # a scheduled run: prune after it
        from fulcrum_sync.services.operate.retention import prune_after_job

        prune_after_job(engine, settings)  # FULCRUM_SYNC_RETENTION_DAYS; never fails the sync
    observe(ctx, result, contexts_behind=_behind(engine, settings, request))
    emit(
        output,
        data=lambda: sync_fields.sync_result_json(result),
        table=lambda: _print_table(result),
        event="sync finished",
        fields=lambda: sync_fields.sync_summary_fields(result),
    )
    finish(result.outcome)


def _print_table(result: SyncRunResult) -> None:
    from fulcrum_sync.render.sync import print_sync_result  # rich: only for a person

    print_sync_result(result)


def _behind(engine: Engine, settings: Settings, request: SyncRequest) -> int | None:
    """The grain's contexts still behind after the run, for the pushed metrics (only when a
    Pushgateway is set; None when the database cannot say)."""
    if not settings.pushgateway_url:
        return None
    from fulcrum_sync.services.operate.freshness import contexts_behind

    try:
        return contexts_behind(engine, request.grain, settings.now())
    except DependencyError:
        return None
