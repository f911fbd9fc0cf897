"""A batch of contexts stored in one transaction (issue 26, store/sync_write.py): it stores
what each context's own transaction would, commits whole or not at all, and completes only
the keys its owner still holds, telling which ones it lost."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from fulcrum_sync.domain import StoreError
from fulcrum_sync.store import runs
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import open_engine
from fulcrum_sync.store.runs import KeyDone, RunItem
from fulcrum_sync.store.series import SeriesKey
from fulcrum_sync.store.sync_status import StatusUpdate
from fulcrum_sync.store.sync_write import ContextWrite, SeriesWrite, write_context, write_contexts

P0 = date(2025, 12, 1)
OWNER = "host:1:run"
METRICS = ("m2", "m0", "m1")  # not in key order: the batch writes (and locks) sorted


def context(metric: str, period: date, shift: float = 0.0, bad: bool = False) -> list[SeriesWrite]:
    """A context's base and one dimension, its window ending in ``period``."""
    dates = [period - timedelta(days=29 - i) for i in range(30)]
    base = [(d, float(d.toordinal() % 7) + shift) for d in dates]
    dim = [(d, s, float(d.toordinal() % 5) + k) for d in dates for k, s in enumerate("ab")]
    if bad:
        base[-1] = (dates[-1], None)  # the database refuses a NULL value
    writes = []
    for dimension, rows in ((None, base), ("region", dim)):
        status = StatusUpdate(
            (1, metric, "day", dimension or ""), None, "INCREMENTAL", period,
            (dates[0], period), "h", None,
        )  # fmt: skip
        key = SeriesKey(1, metric, "day", dimension)
        writes.append(SeriesWrite(key, status, rows, digest_from=dates[0]))
    return writes


def claimed(engine: Engine, period: date) -> list[KeyDone]:
    """Each metric's run key, made and claimed by OWNER."""
    items = [RunItem(f"sync:{m}:{period}", "sync", "day", period, "t", m) for m in METRICS]
    runs.ensure_items(engine, items)
    for item in items:
        got = runs.claim(engine, item.run_key, owner=OWNER, run_id="r", lease_seconds=60)
        assert got is runs.Claim.CLAIMED
    return [KeyDone(i.run_key, OWNER, succeeded=True, counts={}) for i in items]


def state(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """The series, statuses (but when they were written), versions and keys stored."""
    s = t.metric_sync_status.c
    with engine.connect() as conn:
        return {
            "base": [tuple(r) for r in conn.execute(select(t.metric_time_series))],
            "dims": [tuple(r) for r in conn.execute(select(t.metric_dimensional_time_series))],
            "status": [
                tuple(r)
                for r in conn.execute(
                    select(
                        s.metric_id, s.dimension, s.status, s.period, s.rows_stored, s.window_digest
                    )
                )
            ],
            "versions": [
                tuple(r)
                for r in conn.execute(
                    select(t.series_versions.c.metric_id, t.series_versions.c.version)
                )
            ],
            "keys": [
                tuple(r)
                for r in conn.execute(
                    select(t.run_items.c.run_key, t.run_items.c.status, t.run_items.c.counts)
                )
            ],
        }


def sort(rows: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    return {k: sorted(v, key=repr) for k, v in rows.items()}


def test_a_batch_stores_what_each_context_alone_would(db_url: str, tmp_path: Path) -> None:
    alone, batched = open_engine(f"sqlite:///{tmp_path / 'alone.db'}"), open_engine(db_url)
    try:
        for period, shift in ((P0, 0.0), (P0 + timedelta(days=1), 0.5)):  # new, then changed
            done = dict(zip(METRICS, claimed(alone, period), strict=True))
            for m in METRICS:
                write_context(alone, context(m, period, shift), done=done[m])
            dones = claimed(batched, period)
            out = write_contexts(
                batched,
                [ContextWrite(context(m, period, shift), d) for m, d in zip(METRICS, dones)],  # noqa: B905
            )
            assert [key_done for _, key_done in out] == [True] * len(METRICS)
            assert all(len(counts) == 2 and counts[0].stored for counts, _ in out)
        assert sort(state(batched)) == sort(state(alone))
    finally:
        alone.dispose()
        batched.dispose()


def test_a_failing_batch_stores_nothing(engine: Engine) -> None:
    dones = claimed(engine, P0)
    before = state(engine)
    contexts = [
        ContextWrite(context(m, P0, bad=m == "m1"), d) for m, d in zip(METRICS, dones, strict=True)
    ]
    with pytest.raises(StoreError):
        write_contexts(engine, contexts)
    assert state(engine) == before  # no series, status, version, nor completed key


def test_a_lost_lease_is_told_per_key(engine: Engine) -> None:
    dones = claimed(engine, P0)
    lost = dones[1].run_key
    with engine.begin() as conn:  # another process took this key over
        conn.execute(
            update(t.run_items).where(t.run_items.c.run_key == lost).values(lease_owner="other")
        )
    out = write_contexts(
        engine, [ContextWrite(context(m, P0), d) for m, d in zip(METRICS, dones, strict=True)]
    )
    assert [key_done for _, key_done in out] == [True, False, True]
    keys = {k: (status, counts) for k, status, counts in state(engine)["keys"]}
    assert keys[lost] == ("running", None)  # left to its holder
    assert {keys[d.run_key][0] for d in dones if d.run_key != lost} == {"succeeded"}
    assert all(keys[d.run_key][1]["rows_stored"] == 90 for d in dones if d.run_key != lost)


def test_a_context_alone_tells_a_lost_lease_and_claims_nothing_then(engine: Engine) -> None:
    """The single-context path (store_context's write) as the batch does: a key whose lease
    another process took is left to it, and ``also`` (the pattern claims) does not run."""
    dones = claimed(engine, P0)
    lost = dones[1].run_key
    with engine.begin() as conn:  # another process took this key over
        conn.execute(
            update(t.run_items).where(t.run_items.c.run_key == lost).values(lease_owner="other")
        )
    ran: list[str] = []
    told = [
        write_context(engine, context(m, P0), done=d, also=lambda _c, k=d.run_key: ran.append(k))
        for m, d in zip(METRICS, dones, strict=True)
    ]
    assert [completed for _, completed in told] == [True, False, True]
    assert all(counts[0].stored for counts, _ in told)  # the rows are stored either way
    assert ran == [dones[0].run_key, dones[2].run_key]
    keys = {k: status for k, status, _ in state(engine)["keys"]}
    assert keys[lost] == "running" and [keys[d.run_key] for d in dones].count("succeeded") == 2
