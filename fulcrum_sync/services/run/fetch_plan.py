"""The fetch planner: contexts whose queries can share a round trip are fetched together.

Metrics of one tenant that share cube, time dimension and filters (and grain: a sync run has
one) are grouped. The first context of a group a worker syncs fetches the series of every
context of the group in one ``fetch_many`` call (Cube: one multi request whose queries carry
several measures, :mod:`fulcrum_sync.sources.cube_multi`); the others find theirs waiting.
Each context is still stored in its own transaction, under its own run key
(services/run/sync_context.py); only the fetch is shared.

A context whose requests are not the planned ones (its statuses changed since the plan, or
it was not planned) fetches alone, as without the planner. Results held for a context that
is never synced (claimed by another process) are dropped with the planner.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from sqlalchemy import Engine

from fulcrum_sync.catalog import ContextDef
from fulcrum_sync.config import Settings
from fulcrum_sync.domain import SourceStats, SyncRequest, sync_run_key
from fulcrum_sync.sources.base import (
    FetchOutcome,
    FetchRequest,
    Rows,
    Source,
    SourceMetadata,
    cube_of,
    fetch_all,
)
from fulcrum_sync.store import key_holders, progress

MAX_GROUP = 8  # contexts per shared fetch: bounds one request's size and the rows held
Statuses = Callable[[ContextDef], dict[str, Any]]


def request_key(request: FetchRequest) -> tuple[Any, ...]:
    """What identifies a planned request (FetchRequest holds unhashable catalog models)."""
    dim = request.dimension.dimension_id if request.dimension else None
    return (request.tenant, request.metric.metric_id, request.grain.value, request.window, dim)


def group_key(ctx: ContextDef) -> tuple[Any, ...]:
    """Contexts with the same key can share a fetch (one cube, time dimension, filters)."""
    filters = tuple((f.member, f.operator, tuple(f.values)) for f in ctx.tenant.filters)
    metric = ctx.metric
    return (ctx.tenant.identifier, ctx.grain.value, cube_of(metric.measure),
            metric.time_dimension, filters)  # fmt: skip


class _Group:
    def __init__(self, contexts: list[ContextDef]) -> None:
        self.contexts = contexts
        self.lock = threading.Lock()
        self.fetched = False


class GroupedFetch:
    """A Source for ``sync_context`` that fetches each planned group of contexts together.

    :param source: the run's source (its stats, breaker and close stay its own).
    :param contexts: the contexts this run means to sync, in order.
    :param requests: each context's planned requests (its base and dimensions).
    """

    def __init__(
        self,
        source: Source,
        contexts: Sequence[ContextDef],
        requests: dict[str, list[FetchRequest]],
        taken: Callable[[list[ContextDef]], set[str]] | None = None,
    ) -> None:
        self.name = source.name
        self._taken = taken
        self._source = source
        self._requests = requests
        self._held: dict[tuple[Any, ...], FetchOutcome] = {}
        self._lock = threading.Lock()
        self._groups: dict[str, _Group] = {}
        self._first = {  # a context's first planned request -> the context
            request_key(planned[0]): name for name, planned in requests.items() if planned
        }
        by_key: dict[tuple[Any, ...], list[ContextDef]] = {}
        for ctx in contexts:
            if ctx.context.to_string() in requests:
                by_key.setdefault(group_key(ctx), []).append(ctx)
        for members in by_key.values():
            for start in range(0, len(members), MAX_GROUP):
                group = _Group(members[start : start + MAX_GROUP])
                for ctx in group.contexts:
                    self._groups[ctx.context.to_string()] = group

    def fetch_many(self, requests: Sequence[FetchRequest]) -> list[FetchOutcome]:
        """The context's series: from its group's shared fetch when they are the planned
        ones, else fetched now."""
        keys = [request_key(r) for r in requests]
        name = self._first.get(keys[0]) if keys else None
        group = self._group_of(requests)
        if group is not None and name is not None:
            with group.lock:  # the group's first context fetches; the others wait for it
                if not group.fetched:
                    self._fetch_group(group, name)
                    group.fetched = True
            with self._lock:
                held = [self._held.pop(k, None) for k in keys]
            if all(h is not None for h in held):
                return [h for h in held if h is not None]
        return fetch_all(self._source, requests)

    def _group_of(self, requests: Sequence[FetchRequest]) -> _Group | None:
        if not requests:
            return None
        name = self._first.get(request_key(requests[0]))
        if name is None:
            return None
        planned = [request_key(r) for r in self._requests[name]]
        if planned != [request_key(r) for r in requests]:
            return None
        return self._groups.get(name)

    def _fetch_group(self, group: _Group, asking: str) -> None:
        """Fetch the group's series; contexts another process took (or finished) are left out."""
        others = [c for c in group.contexts if c.context.to_string() != asking]
        taken = self._taken(others) if self._taken is not None and others else set()
        names = [c.context.to_string() for c in group.contexts]
        batch = [r for n in names if n not in taken for r in self._requests[n]]
        outcomes = fetch_all(self._source, batch)
        with self._lock:
            for request, outcome in zip(batch, outcomes, strict=True):
                self._held[request_key(request)] = outcome

    def fetch_series(self, request: FetchRequest) -> Rows:
        return self._source.fetch_series(request)

    def fetch_metadata(self, tenant: str) -> SourceMetadata:
        return self._source.fetch_metadata(tenant)

    def stats(self) -> SourceStats:
        return self._source.stats()

    def close(self) -> None:
        """Drop the results no context took (the source is closed by its owner)."""
        with self._lock:
            self._held.clear()


def grouped(
    source: Source,
    contexts: Sequence[ContextDef],
    statuses: Statuses,
    settings: Settings,
    period: date,
    force_full: bool,
    taken: Callable[[list[ContextDef]], set[str]] | None = None,
) -> Source:
    """The source a sync run's contexts fetch through: ``source`` itself when it fetches one
    series at a time (the demo), else a :class:`GroupedFetch` over the contexts' plans."""
    if getattr(source, "fetch_many", None) is None or len(contexts) < 2:
        return source
    from fulcrum_sync.services.run.sync_context import plan_series, series_request

    requests = {
        ctx.context.to_string(): [
            series_request(ctx, dim, window)
            for dim, _, window in plan_series(ctx, period, statuses(ctx), settings, force_full)
        ]
        for ctx in contexts
    }
    return GroupedFetch(source, contexts, requests, taken)


def for_run(
    engine: Engine,
    source: Source,
    contexts: Sequence[ContextDef],
    statuses: Statuses,
    settings: Settings,
    request: SyncRequest,
    owner: str,
) -> Source:
    """:func:`grouped` over the contexts a sync run will do: those whose sync key did not
    succeed yet (all of them with ``--force``). When a group is fetched, its contexts that
    another process holds by then (``owner`` is this run's lease owner) are left out."""
    if getattr(source, "fetch_many", None) is None or len(contexts) < 2:
        return source
    todo = list(contexts)
    if not request.force:
        done = progress.succeeded_keys(engine, "sync", request.grain.value, request.period)
        todo = [c for c in contexts if sync_run_key(c.grain, request.period, c.context) not in done]

    def taken(contexts: list[ContextDef]) -> set[str]:
        keys = {sync_run_key(c.grain, request.period, c.context): c for c in contexts}
        # With --force succeeded keys are done again: only others' live leases count.
        held = key_holders.taken_among(engine, list(keys), owner, succeeded=not request.force)
        return {keys[k].context.to_string() for k in held}

    return grouped(source, todo, statuses, settings, request.period, request.force_full, taken)
