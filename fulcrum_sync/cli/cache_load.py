"""``cache-load``: copy each active context's stored series into its own cache table."""

from __future__ import annotations

from typing import Annotated

import typer

from fulcrum_sync.cli._common import begin, emit, finish, handle_errors, stop_on_sigterm
from fulcrum_sync.cli._deps import deps_of
from fulcrum_sync.cli._options import GrainOption, JsonOption, MetricOption, TenantOption
from fulcrum_sync.cli._push import observe
from fulcrum_sync.domain import Grain


@handle_errors
def cache_load(
    ctx: typer.Context,
    grain: GrainOption,
    tenant: TenantOption = None,
    metric: MetricOption = None,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            metavar="[local|snowflake]",
            help="snowflake, or local (cache tables in the state database). "
            "Default: FULCRUM_SYNC_CACHE_TARGET (local).",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Also load contexts whose series did not change since their last successful "
            "load into the target.",
        ),
    ] = False,
    json_out: JsonOption = False,
) -> None:
    """Copy each active context's stored series into its own cache table.

    One table per tenant, metric and grain, `CACHE_<TENANT>_<METRIC>_<GRAIN>` (lower case in
    the local database), holds the base series and every dimension's. With --target
    snowflake a tenant with a `cache:` block in the catalog loads into its own account,
    database and schema, the others into FULCRUM_SYNC_SNOWFLAKE_*; one connection per
    destination, destinations loaded at once, and one that refuses its credentials fails
    only its own tenants. Each load replaces the
    table's contents atomically; a context with no stored rows is skipped, and one whose
    series did not change since its last successful load is reported unchanged and left
    alone (--force loads it). Scheduled syncs load their contexts themselves
    (`sync --cache-load`); this command is for manual and forced loads. Exit 0 all loaded,
    1 some failed, 2 bad usage or settings, 3 target or database unreachable, 143 stopped by
    SIGTERM (the table in flight finished, the rest left as they were).

    Example: fulcrum-sync cache-load --grain day --target snowflake --tenant acme
    """
    from fulcrum_sync.render import cache_load as render
    from fulcrum_sync.render.console import SyncProgress
    from fulcrum_sync.services.cache import load as svc

    output = begin(ctx, json_out=json_out, job=True)
    deps = deps_of(ctx)
    settings = deps.get_settings()
    grain_value = Grain.parse(grain)
    sinks = deps.get_sinks(target)
    engine = deps.get_engine(pooled=True)
    with (
        stop_on_sigterm(deps.stop) as stop,
        SyncProgress(enabled=not json_out, label="cache tables") as progress,
    ):
        result = svc.run(
            engine,
            settings,
            sinks,
            grain_value,
            tenant,
            metric,
            force=force,
            on_start=progress.start,
            on_result=progress.advance,
            stop=stop,
        )
    observe(ctx, result)  # for the metrics pushed as the command ends
    emit(
        output,
        data=lambda: render.cache_load_json(result),
        table=lambda: render.print_cache_load(result),
        event="cache-load finished",
        fields=lambda: render.cache_load_summary_fields(result),
    )
    finish(result.outcome)
