"""The cache step of a sync run (``--cache-load``): contexts queued, their tables loaded
together.

A context whose sync and patterns succeeded is marked (:meth:`CacheQueue.mark`, in its
worker); when the run reports it, it waits in the queue instead (:meth:`CacheQueue.hold`).
Every ``batch`` contexts, and at the end of the run, :meth:`CacheQueue.flush` loads the
queued contexts' tables in one call of the loader (services/cache/load.py's
``CacheLoader``: each destination's in one batch of a few round trips), sets each context's
own load result, and only then reports each one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from fulcrum_sync.catalog import ContextDef
from fulcrum_sync.domain import ContextResult

if TYPE_CHECKING:  # a cache load's result: only a run with --cache-load makes one
    from fulcrum_sync.domain import ContextCacheResult

CACHE_BATCH = 1_000  # contexts queued before their cache tables load together


class CacheLoads(Protocol):
    """Loads the cache tables of the contexts a sync queued (``--cache-load``: CacheLoader)."""

    def prepare(self, contexts: list[ContextDef]) -> None: ...

    def load_many(
        self,
        contexts: list[ContextDef],
        stop: Callable[[], bool] | None = None,
        fields: dict[str, Any] | None = None,
    ) -> dict[str, ContextCacheResult]: ...

    def close(self) -> None: ...


class CacheQueue:
    """The contexts of a run waiting for their cache load.

    :param loader: loads a list of contexts' tables, each one's result by name.
    :param batch: how many contexts wait before their tables load (and at the run's end).
    """

    def __init__(self, loader: CacheLoads, batch: int = CACHE_BATCH) -> None:
        self.loader = loader
        self.batch = batch
        self._marked: dict[int, ContextDef] = {}  # id(result): its context
        self._queued: list[tuple[ContextDef, ContextResult]] = []
        self._lock = threading.Lock()

    def mark(self, ctx: ContextDef, res: ContextResult) -> None:
        """``res`` (of ``ctx``) is to be loaded once reported (any worker thread)."""
        with self._lock:
            self._marked[id(res)] = ctx

    def hold(self, res: ContextResult) -> bool:
        """Queue ``res`` if it was marked and return True (the run's reporting thread)."""
        with self._lock:
            ctx = self._marked.pop(id(res), None)
        if ctx is None:
            return False
        self._queued.append((ctx, res))
        return True

    @property
    def full(self) -> bool:
        return len(self._queued) >= self.batch

    def flush(
        self,
        emit: Callable[[ContextResult], None],
        *,
        load: bool,
        stop: Callable[[], bool],
        fields: dict[str, Any],
    ) -> None:
        """Load the queued contexts' tables together, then ``emit`` each with its load.

        Nothing is loaded when ``load`` is False or ``stop()`` is true; once a load started,
        ``stop()`` lets the destination in flight finish and starts no other. Each queued
        context is emitted however the load ends.
        """
        queued, self._queued = self._queued, []
        try:
            if queued and load and not stop():
                loads = self.loader.load_many([c for c, _ in queued], stop=stop, fields=fields)
                for ctx, res in queued:
                    res.cache = loads.get(ctx.context.to_string())
        finally:
            for _, res in queued:
                emit(res)
