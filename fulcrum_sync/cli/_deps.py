"""The command's dependencies, held on the root context: every command and the metrics push
(``_push``) reach them here."""

from __future__ import annotations

import typer

from fulcrum_sync.services.deps import Deps


def deps_of(ctx: typer.Context) -> Deps:
    """The command's dependencies: injected by tests through ``obj``, else built lazily."""
    deps = ctx.find_root().obj
    if not isinstance(deps, Deps):
        deps = Deps()
        ctx.find_root().obj = deps
    return deps
