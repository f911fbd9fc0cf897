"""Store a sync's contexts in batches, each batch in ONE transaction (``write_contexts``,
store/sync_write.py).

A context of an incremental sync stores little: its own transaction (begin, commit) and
each bookkeeping statement (statuses, data version, run key) cost more than its rows. A
:class:`WriteBatch` holds fetched contexts (services/run/pending.py) and stores them
together (services/run/context_store.py ``store_contexts``).

When a context joins a batch (:meth:`WriteBatch.add`), and why not otherwise:

- the run has one worker: the batch belongs to the calling thread, in the order of its
  work; several workers keep a transaction per context (one batch would serialize them);
- the context has no patterns to run in this run (``--no-patterns``, patterns disabled, or
  none of its pattern keys): its patterns read the stored data and must see it committed,
  and its pattern keys are claimed in its sync's transaction: such a context keeps its own
  transaction, then its patterns run, as before;
- its credential was not refused: that context is stored alone, then its refusal ends the
  run (the batch is stored first by the runner);
- contexts behind (``--catch-up``) and backfills store ranges of periods on their own path.

A batch is stored when it holds as many contexts as cover :data:`BATCH_SECONDS` of work at
the run's pace (``claim_ahead.Pace``, as claims are sized; at most :data:`MAX_BATCH`), when
the run's loop ends, and before the runner releases keys on a stop (SIGTERM) or an error
(``run_keyed``'s ``deferred``). A context's result (its log line, report, counts,
``key_done``) is given back only once its batch committed: nothing claims what is not
stored. A process killed (SIGKILL) loses at most the batch not yet stored: its keys are
still held by the killed run, which the next run closes as abandoned and does again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from fulcrum_sync.catalog import ContextDef
from fulcrum_sync.domain import ContextResult
from fulcrum_sync.services.jobs.claim_ahead import Pace

if TYPE_CHECKING:  # loaded with the first context to sync: a run with none needs none
    from fulcrum_sync.services.run.pending import PendingContext

BATCH_SECONDS = 0.1  # the work one batch covers, at the run's pace
MAX_BATCH = 64  # contexts in one batch at most


class WriteBatch:
    """Fetched contexts waiting to be stored together; not thread-safe (one worker).

    :param after: called with each context and its result once its batch is stored (the
        sync queues its cache table), before the result is given back.
    """

    def __init__(self, engine: Engine, after: Callable[[ContextDef, ContextResult], None]):
        self.engine = engine
        self.after = after
        self.pending: list[tuple[ContextDef, PendingContext]] = []
        self.ready: list[tuple[str, ContextResult]] = []  # (run key, result): stored
        self.pace = Pace()

    @classmethod
    def for_run(
        cls, engine: Engine, workers: int, after: Callable[[ContextDef, ContextResult], None]
    ) -> WriteBatch | None:
        """A batch for a run of ``workers``; None when its contexts are stored one by one."""
        return cls(engine, after) if workers == 1 else None

    def add(self, ctx: ContextDef, pending: PendingContext, patterns: bool) -> bool:
        """Take ``pending`` into the batch (stored when the batch is full); False when it must
        be stored on its own: it has ``patterns`` to run, or its credential was refused."""
        if patterns or pending.refused is not None:
            return False
        self.pending.append((ctx, pending))
        self.pace.count += 1
        if len(self.pending) >= self.pace.size(BATCH_SECONDS, MAX_BATCH):
            self.store()
        return True

    def take(self, final: bool) -> list[tuple[str, ContextResult]]:
        """The stored contexts' (run key, result) not taken yet; ``final``: store the
        pending ones first (the run's loop ends, or stops)."""
        if final:
            self.store()
        ready, self.ready = self.ready, []
        return ready

    def store(self) -> None:
        """Store the pending contexts in one transaction (or, if it fails, one by one)."""
        from fulcrum_sync.services.run.context_store import store_contexts

        batch, self.pending = self.pending, []
        if not batch:
            return
        results = store_contexts(self.engine, [p for _, p in batch])
        for (ctx, _), res in zip(batch, results, strict=True):
            self.after(ctx, res)
            self.ready.append((res.run_key, res))


__all__ = ["BATCH_SECONDS", "MAX_BATCH", "WriteBatch"]
