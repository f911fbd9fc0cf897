"""``catalog load`` and ``db upgrade``: the catalog and the state database's schema."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fulcrum_sync.cli._common import JsonOption, Output, begin, deps_of, handle_errors

catalog_app = typer.Typer(help="Import tenants and metric definitions.", no_args_is_help=True)
db_app = typer.Typer(help="Manage the state database schema.", no_args_is_help=True)


@catalog_app.command("load")
@handle_errors
def catalog_load(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Catalog YAML file.", dir_okay=False)],
    allow_empty: Annotated[
        bool,
        typer.Option(
            "--allow-empty",
            help="Load a catalog without tenants (it deactivates every metric). "
            "Refused without this.",
        ),
    ] = False,
    json_out: JsonOption = False,
) -> None:
    """Validate a catalog YAML file and make it the stored catalog (replacing the old one).

    Metrics missing from the file stop being discovered; their stored data stays. Every
    problem is listed with its field path, and nothing is written: bad YAML or encoding,
    missing or out-of-range fields, unknown patterns, two contexts that would share a
    cache table, or no tenants at all (unless --allow-empty).

    Example: fulcrum-sync catalog load catalog.yaml
    """
    from fulcrum_sync.render import admin as render
    from fulcrum_sync.render.console import print_json
    from fulcrum_sync.services import catalog as svc

    output = begin(ctx, json_out=json_out)
    deps = deps_of(ctx)
    parsed = svc.read_catalog_file(file, allow_empty=allow_empty)  # before the database
    result = svc.save_catalog(deps.get_engine(), parsed, deps.get_settings().history_start)
    if output is Output.JSON:
        print_json(result)
    else:
        render.print_catalog_load(file, result)


@db_app.command("upgrade")
@handle_errors
def db_upgrade(ctx: typer.Context) -> None:
    """Create or migrate the state database schema to the newest revision.

    Example: FULCRUM_SYNC_DATABASE_URL=postgresql+psycopg://user@db/fulcrum fulcrum-sync db upgrade
    """
    from fulcrum_sync.render import admin as render
    from fulcrum_sync.services import database as svc

    begin(ctx)
    deps = deps_of(ctx)
    render.print_upgrade(svc.upgrade(deps.get_settings(), deps.engine))
