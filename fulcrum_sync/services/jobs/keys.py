"""The run keys of a context's work for a period: its sync key and its pattern keys, and
the one place that makes them all before a run starts work (sync, catch-up, backfill)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from fulcrum_sync.catalog import ContextDef
from fulcrum_sync.domain import PatternContext, pattern_run_key, sync_run_key
from fulcrum_sync.domain.pattern_kinds import PATTERN_KINDS, PatternKind
from fulcrum_sync.store import runs
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
    return [
        (spec, dim, item)
        for spec in pattern_specs(ctx, only, overrides)
        for dim, item in _pattern_items(ctx, period, spec.name, spec.needs_dimension)
    ]


def pattern_keys(
    ctx: ContextDef,
    period: date,
    overrides: Overrides = None,
    skip_dimensions: frozenset[str] = frozenset(),
) -> list[RunItem]:
    """The run keys of :func:`pattern_jobs`, made without importing the patterns (pandas):
    what a run needs to make keys or to see that they are done. ``skip_dimensions``: leave
    out the keys of these dimensions' patterns."""
    items: list[RunItem] = []
    for name in ctx.metric.patterns:
        kind: PatternKind | PatternSpec | None = (overrides or {}).get(name) or PATTERN_KINDS.get(
            name
        )
        if kind is None:  # not a registered pattern: let the registry say so
            jobs = pattern_jobs(ctx, period, overrides=overrides)
            return [item for _, dim, item in jobs if dim not in skip_dimensions]
        if kind.supports(ctx.grain):
            made = _pattern_items(ctx, period, name, kind.needs_dimension)
            items += [item for dim, item in made if dim not in skip_dimensions]
    return items


def _pattern_items(
    ctx: ContextDef, period: date, name: str, per_dimension: bool
) -> list[tuple[str | None, RunItem]]:
    pctx = PatternContext(ctx.tenant.identifier, ctx.metric.metric_id, name)
    dims = [d.dimension_id for d in ctx.metric.dimensions] if per_dimension else [None]
    return [
        (
            dim,
            RunItem(
                pattern_run_key(ctx.grain, period, pctx, dim),
                "pattern",
                ctx.grain.value,
                period,
                ctx.tenant.identifier,
                ctx.metric.metric_id,
                name,
            ),
        )
        for dim in dims
    ]


def expected_items(
    ctx: ContextDef, periods: list[date], *, patterns: bool, overrides: Overrides = None
) -> list[RunItem]:
    """Every key ``ctx`` should have for ``periods``: its sync key and, with ``patterns``,
    one key per enabled pattern (and dimension). A context-period is done only when all of
    them are; they are made before any work starts (:func:`ensure_expected`), so an
    interruption anywhere leaves them for the next plain run."""
    items: list[RunItem] = []
    for period in periods:
        items.append(sync_item(ctx, period))
        if patterns:
            items += pattern_keys(ctx, period, overrides)
    return items


def ensure_expected(
    engine: Engine,
    work: list[tuple[ContextDef, list[date]]],
    *,
    patterns: bool,
    run_id: str | None = None,
    overrides: Overrides = None,
) -> int:
    """Make the expected keys of each (context, periods) of ``work`` that do not exist yet;
    return how many keys that is in all. ``run_id``: the run adopts the keys not started
    (``state reset`` then leaves them alone while it is alive). Raises StoreError."""
    items = [
        item
        for ctx, periods in work
        for item in expected_items(ctx, periods, patterns=patterns, overrides=overrides)
    ]
    runs.ensure_items(engine, items, run_id)
    return len(items)
