"""The series statuses of a run's contexts, read a chunk of contexts at a time."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from fulcrum_sync.catalog import ContextDef

if TYPE_CHECKING:  # read when the first context syncs: an everything-done run reads none
    from fulcrum_sync.store.sync_status import GrainStatuses, SeriesStatus


class RunStatuses:
    """The series statuses of a run's contexts, read for ``CHUNK`` contexts at a time (in the
    order of the work) when the first of them needs its own: one query per chunk instead of
    one per context, and memory bounded however many contexts the run has."""

    CHUNK = 500

    def __init__(self, engine: Engine, grain: str, contexts: list[ContextDef]) -> None:
        self._engine, self._grain, self._contexts = engine, grain, contexts
        self._chunk_of = {id(c): i // self.CHUNK for i, c in enumerate(contexts)}
        self._read: set[int] = set()
        self._statuses: GrainStatuses = {}
        self._lock = threading.Lock()

    def of(self, ctx: ContextDef) -> dict[str, SeriesStatus]:
        from fulcrum_sync.store import sync_status

        key = (ctx.tenant.tenant_id, ctx.metric.metric_id)
        with self._lock:
            chunk = self._chunk_of[id(ctx)]
            if chunk not in self._read:
                self._read.add(chunk)
                part = self._contexts[chunk * self.CHUNK : (chunk + 1) * self.CHUNK]
                ids = [(c.tenant.tenant_id, c.metric.metric_id) for c in part]
                read = sync_status.read_grain_statuses(self._engine, self._grain, ids)
                self._statuses.update(read)
            return self._statuses.pop(key, {})
