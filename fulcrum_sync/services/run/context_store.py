"""Store fetched contexts (services/run/pending.py): one alone, or a batch of them together.

:func:`store_context` is a context's own transaction (its series, their statuses, its run
key: store/sync_write.py). :func:`store_contexts` stores a batch of contexts in ONE
transaction (store/sync_write.py too); when that transaction fails, each context of the batch
is stored on its own as :func:`store_context` does, so nothing of a batch is half written
and a context (or a series) the database refuses fails alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

from sqlalchemy import Connection, Engine

from fulcrum_sync.domain import ContextResult, DependencyError, SeriesResult, StoreBusyError
from fulcrum_sync.services.run.pending import PendingContext, mark_failed
from fulcrum_sync.store import sync_status
from fulcrum_sync.store.runs import KeyDone
from fulcrum_sync.store.series import WriteCounts
from fulcrum_sync.store.sync_write import ContextWrite, SeriesWrite, write_context, write_contexts


def store_context(
    engine: Engine,
    pending: PendingContext,
    also: Callable[[Connection, ContextResult], object] | None = None,
) -> ContextResult:
    """Store one fetched context in its own transaction (``also(conn, result)`` runs in it
    when its key completes there); raise its refusal (RefusedError) once what was fetched
    is stored."""
    result = pending.result
    then = (lambda conn: also(conn, result)) if also is not None and pending.done else None
    key_done = _store(engine, pending.fetched, pending.done, then)
    result = pending.finish(key_done)
    if pending.refused is not None:
        raise pending.refused  # exit 2; what was fetched before it (and its failure) is stored
    return result


def store_contexts(engine: Engine, batch: Sequence[PendingContext]) -> list[ContextResult]:
    """Store ``batch`` (contexts without a refusal) in one transaction; return each result.

    When that transaction fails (a DependencyError: a lost connection is retried whole by
    ``write_contexts`` itself), nothing of it is stored and each context is stored on its
    own instead (:func:`store_context`).
    """
    if not batch:
        return []
    try:
        written = write_contexts(engine, [ContextWrite(p.writes, p.done) for p in batch])
    except DependencyError:
        return [store_context(engine, p) for p in batch]
    results = []
    for pending, (counts, key_done) in zip(batch, written, strict=True):
        _count(pending.fetched, counts)
        results.append(pending.finish(key_done))
    return results


def _store(
    engine: Engine,
    fetched: list[tuple[SeriesResult, SeriesWrite]],
    done: KeyDone | None,
    also: Callable[[Connection], object] | None = None,
) -> bool:
    """Store the fetched series in one transaction; return whether ``done`` was recorded
    (not when its owner lost the key's lease meanwhile: another process holds it now).

    When that transaction fails, store them one by one, each in its own transaction as
    before, so that a series the database refuses fails alone (its status says why) and the
    others are kept; the run key is then left to the caller.
    """
    try:
        counts, completed = write_context(engine, [w for _, w in fetched], done=done, also=also)
    except StoreBusyError as exc:  # a lock not granted in time: every series would wait again
        for series, write in fetched:
            mark_failed(series, exc)
            _record_failure(engine, series, write)
        return False
    except DependencyError:
        for series, write in fetched:
            if write.rows is None:
                _record_failure(engine, series, write)
            else:
                _store_one(engine, series, write)
        return False
    _count(fetched, counts)
    return completed


def _count(fetched: list[tuple[SeriesResult, SeriesWrite]], counts: list[WriteCounts]) -> None:
    for (series, _), written in zip(fetched, counts, strict=True):
        series.inserted, series.updated, series.unchanged = (
            written.inserted,
            written.updated,
            written.unchanged,
        )


def _store_one(engine: Engine, series: SeriesResult, write: SeriesWrite) -> None:
    try:
        (counts,), _ = write_context(engine, [write])
        _count([(series, write)], [counts])
    except Exception as exc:  # isolation: one series failing never stops the others
        mark_failed(series, exc)
        _record_failure(engine, series, write)


def _record_failure(engine: Engine, series: SeriesResult, write: SeriesWrite) -> None:
    with contextlib.suppress(DependencyError):  # the database itself may be what failed
        sync_status.record_failure(
            engine,
            write.status,
            error=series.error,
            rows_fetched=series.rows_fetched,
            rows_skipped=series.skipped.total,
        )
