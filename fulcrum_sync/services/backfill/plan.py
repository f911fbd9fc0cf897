"""Plan a backfill: resolve the request (or its resume record), pick contexts, count the work.

A backfill's plan is periods × contexts, recorded with its run keys under an id that the
same range and filters always give, so every shard (and a plain re-run) shares one plan.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from sqlalchemy import Engine

from fulcrum_sync.catalog import ContextDef
from fulcrum_sync.config import Settings
from fulcrum_sync.domain import (
    BackfillPlan,
    BackfillRequest,
    Grain,
    InputError,
    SyncType,
    format_period,
    iter_periods,
    parse_period,
)
from fulcrum_sync.services.contexts.selection import select_contexts
from fulcrum_sync.services.jobs.keys import expected_items, pattern_jobs
from fulcrum_sync.services.run.stretches import stretches_of
from fulcrum_sync.store import backfills


@dataclass(slots=True)
class Planned:
    """A resolved request, its plan, and the contexts (with their definitions) it covers."""

    request: BackfillRequest
    plan: BackfillPlan
    contexts: list[ContextDef]

    def shard_contexts(self) -> list[ContextDef]:
        """The contexts this process takes: every n-th from position i with ``--shard i/n``."""
        if self.request.shard is None:
            return self.contexts
        index, count = self.request.shard
        return [c for pos, c in enumerate(self.contexts) if pos % count == index]


def parse_shard(
    text: str | None, env: Mapping[str, str] | None = None, shard_count: int | None = None
) -> tuple[int, int] | None:
    """Parse ``i/n`` (0 <= i < n); default from JOB_COMPLETION_INDEX and the shard count."""
    if text is None:
        index = (os.environ if env is None else env).get("JOB_COMPLETION_INDEX")
        if index is None or shard_count is None:
            return None
        text = f"{index}/{shard_count}"
    parts = text.split("/")
    if len(parts) == 2 and all(p.strip().isdigit() for p in parts):
        i, n = int(parts[0]), int(parts[1])
        if 0 <= i < n:
            return i, n
    raise InputError(f"invalid shard {text!r}: expected i/n with 0 <= i < n (e.g. 0/2)")


def backfill_arguments(request: BackfillRequest) -> dict[str, Any]:
    """What identifies a backfill: its range and filters."""
    return {
        "grain": request.grain.value,
        "start": request.start.isoformat(),
        "end": request.end.isoformat(),
        "tenant": request.tenant,
        "metric": request.metric,
        "patterns": request.patterns,
    }


def backfill_id(request: BackfillRequest) -> str:
    """A stable id for a backfill's range and filters (shards compute the same one)."""
    text = json.dumps(backfill_arguments(request), sort_keys=True)
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"fulcrum-sync:backfill:{text}"))


def resolve(engine: Engine, request: BackfillRequest) -> BackfillRequest:
    """Return the request to run: with ``--resume``, the range and filters of its record.

    Raises InputError for an unknown backfill id.
    """
    if not request.resume:
        return request
    return replace(request, **_recorded(backfills.get_backfill(engine, request.resume)))


def _recorded(record: backfills.BackfillRecord) -> dict[str, Any]:
    args = record.arguments
    return {
        "grain": Grain.parse(record.grain),
        "start": record.start,
        "end": record.end,
        "tenant": args.get("tenant"),
        "metric": args.get("metric"),
        "patterns": bool(args.get("patterns", True)),
        "resume": record.backfill_id,
    }


def resumed_request(
    engine: Engine,
    backfill_id: str,
    *,
    grain: Grain | None = None,
    start: str | None = None,
    end: str | None = None,
    tenant: str | None = None,
    metric: str | None = None,
    patterns: bool | None = None,
) -> BackfillRequest:
    """Return the recorded request of ``backfill_id`` (``--resume``), its grain included.

    Options repeated with ``--resume`` must match the record: one that contradicts it raises
    InputError naming both values, never ignored. Raises InputError for an unknown id.
    """
    rec = BackfillRequest(**_recorded(backfills.get_backfill(engine, backfill_id)))
    g = rec.grain
    given = [
        (_opt("--grain", grain.value if grain else None), _opt("--grain", g.value)),
        (_opt("--start", _period_text(g, start)), _opt("--start", _period_text(g, rec.start))),
        (_opt("--end", _period_text(g, end)), _opt("--end", _period_text(g, rec.end))),
        (_opt("--tenant", tenant), _opt("--tenant", rec.tenant)),
        (_opt("--metric", metric), _opt("--metric", rec.metric)),
        (_flag(patterns), _flag(rec.patterns)),
    ]
    clashes = [
        f"{value} (recorded: {was or 'none'})"
        for value, was in given
        if value is not None and value != was
    ]
    if clashes:
        verb, them = ("contradicts", "it") if len(clashes) == 1 else ("contradict", "them")
        raise InputError(
            f"--resume {backfill_id}: {'; '.join(clashes)} {verb} backfill {rec.resume}; "
            f"leave {them} out: --resume takes the recorded range and filters"
        )
    return rec


def _opt(name: str, value: str | None) -> str | None:
    return None if value is None else f"{name} {value}"


def _period_text(grain: Grain, value: str | date | None) -> str | None:
    if value is None:
        return None
    return format_period(grain, parse_period(grain, value) if isinstance(value, str) else value)


def _flag(value: bool | None) -> str | None:
    return None if value is None else ("--patterns" if value else "--no-patterns")


def make_plan(engine: Engine, settings: Settings, request: BackfillRequest) -> Planned:
    """Resolve and validate ``request`` and plan it (all shards).

    Writes nothing with ``request.dry_run``; otherwise may discover contexts on a fresh
    database. Raises InputError for a bad range, filter or resume id.
    """
    request = resolve(engine, request)
    request.validate(settings.history_start, settings.now())
    contexts = select_contexts(
        engine, settings, request.grain, request.tenant, request.metric, dry_run=request.dry_run
    )
    periods = list(iter_periods(request.grain, request.start, request.end))
    limit = settings.lookback[request.grain][SyncType.FULL]
    stretches = len(stretches_of(periods, request.grain, limit))
    plan = BackfillPlan(
        grain=request.grain,
        periods=periods,
        contexts=[c.context for c in contexts],
        sync_keys=len(periods) * len(contexts),
        pattern_keys=count_pattern_keys(contexts, periods) if request.patterns else 0,
        estimated_queries=sum((1 + len(c.metric.dimensions)) * stretches for c in contexts),
        backfill_id=request.resume or (None if request.dry_run else backfill_id(request)),
        shard=request.shard,
    )
    return Planned(request, plan, contexts)


def record_plan(engine: Engine, planned: Planned) -> None:
    """Store a new backfill's plan and its run keys (a resumed one is already stored)."""
    request, plan = planned.request, planned.plan
    if request.resume or plan.backfill_id is None:
        return
    items = [
        item
        for ctx in planned.contexts
        for item in expected_items(ctx, plan.periods, patterns=request.patterns)
    ]
    backfills.save_backfill(
        engine,
        plan.backfill_id,
        request.grain.value,
        request.start,
        request.end,
        backfill_arguments(request),
        items,
    )


def count_pattern_keys(contexts: list[ContextDef], periods: list[date]) -> int:
    """How many pattern keys the contexts have over ``periods``."""
    # Every period of a context has the same patterns (and dimensions).
    if not periods:
        return 0
    return sum(len(pattern_jobs(c, periods[0])) for c in contexts) * len(periods)
