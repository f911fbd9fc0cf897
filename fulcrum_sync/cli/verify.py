"""``verify``: compare the stored data with its source and the cache with the stored data."""

from __future__ import annotations

from typing import Annotated

import typer

from fulcrum_sync.cli._common import begin, emit, finish, handle_errors
from fulcrum_sync.cli._deps import deps_of
from fulcrum_sync.cli._options import GrainOption, JsonOption, MetricOption, TenantOption
from fulcrum_sync.cli._push import observe
from fulcrum_sync.domain import Grain
from fulcrum_sync.domain.verify import DEFAULT_SEED, VerifyRequest


@handle_errors
def verify(
    ctx: typer.Context,
    grain: GrainOption,
    tenant: TenantOption = None,
    metric: MetricOption = None,
    sample: Annotated[
        int | None,
        typer.Option(
            "--sample",
            metavar="N",
            help="Compare N contexts picked at random (the same N every run with one --seed).",
        ),
    ] = None,
    seed: Annotated[
        int, typer.Option("--seed", metavar="SEED", help="Seed of the --sample draw.")
    ] = DEFAULT_SEED,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Compare with the source only, not the cache.")
    ] = False,
    json_out: JsonOption = False,
) -> None:
    """Check that the stored data still matches its source, and the cache the stored data.

    For each selected context the stored window of the base series and of every dimension is
    fetched again from the source and compared with the state database: rows missing on
    either side, values that differ beyond float tolerance, and dates inside the source's
    window it returned nothing for (a pre-aggregation that does not cover them). Then the
    state database is compared with the context's cache table, if it was ever loaded.
    Read-only: each difference names the command that would fix it. Exit 0 all equal,
    1 something differs, 2 bad usage, 3 source, cache or database unreachable.

    Example: fulcrum-sync verify --grain day --sample 20
    """
    from fulcrum_sync.render import verify as render
    from fulcrum_sync.services.operate import verify as svc

    request = VerifyRequest(Grain.parse(grain), tenant, metric, sample, seed)
    request.check()
    output = begin(ctx, json_out=json_out, job=True)
    deps = deps_of(ctx)
    sink = None if no_cache else deps.get_sinks()
    result = svc.run(deps.get_engine(), deps.get_source(), sink, deps.get_settings(), request)
    observe(ctx, result)  # for the metrics pushed as the command ends
    emit(
        output,
        data=lambda: render.verify_json(result),
        table=lambda: render.print_verify(result),
        event="verify finished",
        fields=lambda: render.verify_summary_fields(result),
    )
    finish(result.outcome)
