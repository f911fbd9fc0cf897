"""``catalog load|validate|show`` and ``db upgrade|current``: the catalog and the schema."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from fulcrum_sync.cli._common import Output, begin, handle_errors
from fulcrum_sync.cli._deps import deps_of
from fulcrum_sync.cli._options import JsonOption

catalog_app = typer.Typer(
    help="Import, check and export tenants and metric definitions.", no_args_is_help=True
)
db_app = typer.Typer(help="Manage the state database schema.", no_args_is_help=True)


@catalog_app.command("load")
@handle_errors
def catalog_load(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="Catalog YAML file.", dir_okay=False)
    ],
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
    from fulcrum_sync.services.contexts import catalog as svc

    output = begin(ctx, json_out=json_out)
    deps = deps_of(ctx)
    parsed = svc.read_catalog_file(file, allow_empty=allow_empty)  # before the database
    result = svc.save_catalog(deps.get_engine(), parsed, deps.get_settings().history_start)
    if output is Output.JSON:
        print_json(result)
    else:
        render.print_catalog_load(file, result)


@catalog_app.command("validate")
@handle_errors
def catalog_validate(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="Catalog YAML file.", dir_okay=False)
    ],
    json_out: JsonOption = False,
) -> None:
    """Check a catalog YAML file as `catalog load` would, and report every problem; write nothing.

    Exit 0 valid, 2 invalid. No database is opened.

    Example: fulcrum-sync catalog validate catalog.yaml
    """
    from fulcrum_sync.render import admin as render
    from fulcrum_sync.render.console import print_json
    from fulcrum_sync.services.contexts import catalog as svc

    output = begin(ctx, json_out=json_out)
    catalog = svc.validate_catalog_file(file)
    summary = render.catalog_summary(catalog)
    if output is Output.JSON:
        print_json({"file": file, "valid": True, **summary})
    else:
        render.print_catalog_valid(file, summary)


@catalog_app.command("show")
@handle_errors
def catalog_show(ctx: typer.Context) -> None:
    """Print the stored catalog as YAML that `catalog load` accepts (a round trip).

    Example: fulcrum-sync catalog show > catalog.yaml
    """
    from fulcrum_sync.services.contexts import catalog as svc

    begin(ctx)
    text = svc.export_catalog(deps_of(ctx).get_engine())
    if text.strip() == "{}":
        typer.echo("No catalog is stored yet: load one with `fulcrum-sync catalog load`.", err=True)
    typer.echo(text, nl=False)


@db_app.command("current")
@handle_errors
def db_current(ctx: typer.Context, json_out: JsonOption = False) -> None:
    """Show the state database's schema revision and whether it is the newest; change nothing.

    Example: fulcrum-sync db current
    """
    from fulcrum_sync.render import admin as render
    from fulcrum_sync.render.console import print_json
    from fulcrum_sync.services.operate import database as svc

    output = begin(ctx, json_out=json_out)
    deps = deps_of(ctx)
    result = svc.current(deps.get_settings(), deps.engine)
    if output is Output.JSON:
        print_json({**asdict(result), "current": result.current})
    else:
        render.print_revision(result)


@db_app.command("upgrade")
@handle_errors
def db_upgrade(ctx: typer.Context) -> None:
    """Create or migrate the state database schema to the newest revision.

    Example: FULCRUM_SYNC_DATABASE_URL=postgresql+psycopg://user@db/fulcrum fulcrum-sync db upgrade
    """
    from fulcrum_sync.render import admin as render
    from fulcrum_sync.services.operate import database as svc

    begin(ctx)
    deps = deps_of(ctx)
    render.print_upgrade(svc.upgrade(deps.get_settings(), deps.engine))
