"""The run keys of a context's work for one period: its sync key and its pattern keys."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import TYPE_CHECKING

from fulcrum_sync.catalog import ContextDef
from fulcrum_sync.domain import PatternContext, pattern_run_key, sync_run_key
from fulcrum_sync.store.runs import RunItem

if TYPE_CHECKING:  # the registry imports pandas: a sync without patterns never needs it
    from fulcrum_sync.patterns.registry import PatternSpec

# Patterns to use instead of the registered ones of the same name (tests inject through Deps).
Overrides = Mapping[str, "PatternSpec"] | None

# One pattern run: the pattern, its dimension (None for whole-series patterns), its key.
PatternJob = tuple["PatternSpec", str | None, RunItem]


def sync_item(ctx: ContextDef, period: date) -> RunItem:
    """The run key that names syncing ``ctx`` for ``period``."""
    return RunItem(
        sync_run_key(ctx.grain, period, ctx.context),
        "sync",
        ctx.grain.value,
        period,
        ctx.tenant.identifier,
        ctx.metric.metric_id,
    )


def pattern_specs(
    ctx: ContextDef, only: str | None = None, overrides: Overrides = None
) -> list[PatternSpec]:
    """The enabled patterns of ``ctx`` that run at its grain (``only`` one of them)."""
    names = [n for n in ctx.metric.patterns if only is None or n == only]
    if not names:
        return []
    from fulcrum_sync.patterns.registry import get_pattern

    specs = [(overrides or {}).get(n) or get_pattern(n) for n in names]
    return [s for s in specs if s.supports(ctx.grain)]


def pattern_jobs(
    ctx: ContextDef, period: date, only: str | None = None, overrides: Overrides = None
) -> list[PatternJob]:
    """Every pattern run of ``ctx`` for ``period``: dimension patterns once per dimension."""
    jobs: list[PatternJob] = []
    for spec in pattern_specs(ctx, only, overrides):
        pctx = PatternContext(ctx.tenant.identifier, ctx.metric.metric_id, spec.name)
        dims = [d.dimension_id for d in ctx.metric.dimensions] if spec.needs_dimension else [None]
        for dim in dims:
            item = RunItem(
                pattern_run_key(ctx.grain, period, pctx, dim),
                "pattern",
                ctx.grain.value,
                period,
                ctx.tenant.identifier,
                ctx.metric.metric_id,
                spec.name,
            )
            jobs.append((spec, dim, item))
    return jobs
