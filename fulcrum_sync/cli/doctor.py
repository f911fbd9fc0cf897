"""``doctor``: check a deployment's settings and every dependency, one line each."""

from __future__ import annotations

import typer

from fulcrum_sync.cli._common import Output, begin, finish, handle_errors
from fulcrum_sync.cli._deps import deps_of
from fulcrum_sync.cli._options import JsonOption
from fulcrum_sync.domain import InputError


@handle_errors
def doctor(ctx: typer.Context, json_out: JsonOption = False) -> None:
    """Check a deployment: every setting and dependency, one line each with the fix.

    Settings (secrets shown only as set or unset), the state database and its schema
    revision, the catalog, Cube (one /meta per tenant, so each token is tried), Snowflake
    when it is the cache target, and the clock.

    Exit 0 all fine (warnings allowed), 2 something is misconfigured (a refused token, a bad
    setting), 3 a dependency is unreachable. Changes nothing. --verbose lists every setting.

    Example: fulcrum-sync doctor
    """
    from fulcrum_sync.jsonable import jsonable
    from fulcrum_sync.render import doctor as render
    from fulcrum_sync.render.console import print_json
    from fulcrum_sync.services.operate import doctor as svc

    deps = deps_of(ctx)
    try:
        output = begin(ctx, json_out=json_out)
    except InputError:  # bad settings: doctor reports them as its first finding
        output = Output.JSON if json_out else Output.TABLE
    report = svc.run(deps)
    if output is Output.JSON:
        print_json({"outcome": report.outcome, **jsonable(report)})
    else:
        render.print_doctor(report, verbose=deps.verbose)
    finish(report.outcome)
