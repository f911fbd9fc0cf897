"""Counting and deleting old run history in short batches (``state prune``).

Each part is a table and a filter (what is old and not protected, see
:mod:`fulcrum_sync.domain.retention`). A delete takes at most ``batch_rows`` rows per
transaction, so a prune never holds a lock for long while jobs run beside it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    Table,
    and_,
    delete,
    exists,
    func,
    not_,
    or_,
    select,
    true,
    tuple_,
)

from fulcrum_sync.domain.retention import PRUNE_PARTS, Cutoff
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import translate_errors
from fulcrum_sync.store.state import held_keys, live_runs


def _old_period(column: Any, grain: Any, cutoff: Cutoff) -> ColumnElement[bool]:
    """Rows whose period lies wholly before the cutoff day (per grain)."""
    return or_(*(and_(grain == g.value, column < start) for g, start in cutoff.periods.items()))


def _run_keys(cutoff: Cutoff, held: ColumnElement[bool], *, counting: bool) -> ColumnElement[bool]:
    """Old run keys, except a live process's and each context's latest succeeded one.

    Two spellings of one set. Counting looks at every old key: the latest succeeded periods
    are found once, by one grouped subquery (a hashed anti-join). A delete batch takes the
    first ``batch_rows`` old keys: a correlated check per candidate (an index probe each),
    whose cost does not grow with the table.
    """
    c = t.run_items.c
    other = t.run_items.alias("other")
    group = (other.c.kind, other.c.grain, other.c.tenant, other.c.metric_id, other.c.pattern)
    not_latest: ColumnElement[bool]
    if counting:
        latest = (
            select(*group, func.max(other.c.period))
            .where(other.c.status == "succeeded")
            .group_by(*group)
        )
        key = tuple_(c.kind, c.grain, c.tenant, c.metric_id, c.pattern, c.period)
        not_latest = key.not_in(latest)
    else:
        mine = (c.kind, c.grain, c.tenant, c.metric_id, c.pattern)
        same_group = (o == m for o, m in zip(group, mine, strict=True))
        not_latest = exists().where(
            and_(*same_group, other.c.status == "succeeded", other.c.period > c.period)
        )
    return and_(
        _old_period(c.period, c.grain, cutoff),
        not_(held),
        or_(c.status != "succeeded", not_latest),
    )


def _pattern_results(cutoff: Cutoff, *, counting: bool) -> ColumnElement[bool]:
    """Old pattern results a later result of the same context, pattern and dimension replaced
    (spelt for counting or for a delete batch, as :func:`_run_keys`)."""
    c = t.pattern_results.c
    other = t.pattern_results.alias("other")
    group = (
        other.c.tenant_id,
        other.c.metric_id,
        other.c.pattern,
        other.c.grain,
        other.c.dimension,
    )
    mine = (c.tenant_id, c.metric_id, c.pattern, c.grain, c.dimension)
    superseded: ColumnElement[bool]
    if counting:
        latest = select(*group, func.max(other.c.analysis_period)).group_by(*group)
        superseded = tuple_(*mine, c.analysis_period).not_in(latest)
    else:
        same_group = (o == m for o, m in zip(group, mine, strict=True))
        superseded = exists().where(and_(*same_group, other.c.analysis_period > c.analysis_period))
    return and_(_old_period(c.analysis_period, c.grain, cutoff), superseded)


def _old_backfills(cutoff: Cutoff) -> ColumnElement[bool]:
    """Backfill plans finished before the cutoff (an unfinished one stays resumable)."""
    c = t.backfills.c
    return and_(c.finished_at.isnot(None), c.finished_at < cutoff.moment)


def _backfill_items(cutoff: Cutoff) -> ColumnElement[bool]:
    old = select(t.backfills.c.backfill_id).where(_old_backfills(cutoff))
    return t.backfill_items.c.backfill_id.in_(old)


def _runs(cutoff: Cutoff) -> ColumnElement[bool]:
    """Finished runs started before the cutoff."""
    c = t.runs.c
    return and_(c.started_at < cutoff.moment, c.finished_at.isnot(None))


def _cache_loads(cutoff: Cutoff) -> ColumnElement[bool]:
    """Load records older than the cutoff of contexts no longer active (an active context's
    record says what its table holds: the next load would copy everything again)."""
    c = t.cache_loads.c
    x = t.contexts.c
    active = exists().where(
        and_(
            x.tenant_id == c.tenant_id,
            x.metric_id == c.metric_id,
            x.grain == c.grain,
            x.pattern == t.NO_PATTERN,
            x.active == true(),
        )
    )
    return and_(c.loaded_at < cutoff.moment, not_(active))


_TABLES: dict[str, Table] = {
    "run keys": t.run_items,
    "pattern results": t.pattern_results,
    "backfill plan keys": t.backfill_items,
    "backfill plans": t.backfills,
    "runs": t.runs,
    "cache loads": t.cache_loads,
}


def _filters(
    cutoff: Cutoff, held: ColumnElement[bool], *, counting: bool = False
) -> dict[str, ColumnElement[bool]]:
    """Each part's old, unprotected rows; ``held``: the run keys a live run holds or means to
    do (:func:`fulcrum_sync.store.state.held_keys`), never removed."""
    filters = {
        "run keys": _run_keys(cutoff, held, counting=counting),
        "pattern results": _pattern_results(cutoff, counting=counting),
        "backfill plan keys": _backfill_items(cutoff),
        "backfill plans": _old_backfills(cutoff),
        "runs": _runs(cutoff),
        "cache loads": _cache_loads(cutoff),
    }
    assert list(filters) == list(PRUNE_PARTS)
    return filters


def count_old(engine: Engine, cutoff: Cutoff, now: datetime) -> tuple[dict[str, int], int]:
    """Return the rows each part would lose, and the old run keys a live process holds.

    :param now: the clock's time (leases are wall-clock), not the cutoff's notion of today.
    Held keys are those of :func:`fulcrum_sync.store.state.held_keys`: running with a live
    lease, or pending and adopted by a run whose process is alive.
    """
    with translate_errors(engine, "count old history in"), engine.connect() as conn:
        held = held_keys(now, live_runs(conn))
        c = t.run_items.c
        wheres = {
            **{
                part: (_TABLES[part], where)
                for part, where in _filters(cutoff, held, counting=True).items()
            },
            "held": (t.run_items, and_(_old_period(c.period, c.grain, cutoff), held)),
        }
        # One statement for every count: a prune that finds nothing (each scheduled job's)
        # costs one round trip and one compiled statement, not seven.
        counts = [
            select(func.count()).select_from(table).where(where).correlate(None)
            for table, where in wheres.values()
        ]
        row = conn.execute(select(*(q.scalar_subquery() for q in counts))).one()
    found = dict(zip(wheres, (int(n) for n in row), strict=True))
    held_count = found.pop("held")
    return found, held_count


def delete_old(
    engine: Engine,
    cutoff: Cutoff,
    now: datetime,
    batch_rows: int,
    on_batch: Callable[[str, int], None] | None = None,
) -> tuple[dict[str, int], int]:
    """Delete every part's old rows, at most ``batch_rows`` per transaction.

    Return the rows deleted per part and the number of transactions. ``on_batch`` is told
    (part, rows) after each one. Raises StoreError (what earlier batches deleted stays
    deleted: a prune run again goes on where it stopped).
    """
    deleted: dict[str, int] = {part: 0 for part in PRUNE_PARTS}
    batches = 0
    for part, table in _TABLES.items():
        key = tuple_(*table.primary_key.columns)
        while True:
            with translate_errors(engine, "prune old history in"), engine.begin() as conn:
                # The live runs are read in each batch's transaction: one starting meanwhile
                # (a catch-up adopting old keys) keeps its keys.
                where = _filters(cutoff, held_keys(now, live_runs(conn)))[part]
                chosen = select(*table.primary_key.columns).where(where).limit(batch_rows)
                query = delete(table).where(key.in_(chosen.correlate(None)))
                done = conn.execute(query).rowcount or 0
            batches += 1
            deleted[part] += done
            if on_batch is not None:
                on_batch(part, done)
            if done < batch_rows:
                break
    return deleted, batches
