"""Every key a context-period should have exists before work starts; a vanished key fails its
context truthfully; a live run's keys survive ``state reset`` (issue 23, items 1, 2 and 12)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from cli_invoke import Cli
from sqlalchemy import Connection, Engine, delete, func, select

from fulcrum_sync.domain import Grain, Scope
from fulcrum_sync.services.deps import Deps
from fulcrum_sync.sources.demo import DemoSource
from fulcrum_sync.store import claims, progress, run_records, runs
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import open_engine
from fulcrum_sync.store.state import StoreScope, count_parts, delete_parts

PERIOD = "2025-09-30"
DAY = date(2025, 9, 30)
SYNC = ["sync", "--grain", "day", "--period", PERIOD, "--tenant", "acme"]
# acme's day contexts (demo catalog): new_revenue (5 patterns, dimension_analysis on 3
# dimensions), orders (3), active_users (3, dimension_analysis on 2 dimensions).
ACME_DAY_KEYS = (1 + 4 + 3) + (1 + 3) + (1 + 2 + 2)


def key_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t.run_items)).scalar_one())


class CountingSource(DemoSource):
    """The demo source, noting how many run keys existed at its first fetch."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(42)
        self.engine = engine
        self.keys_at_first_fetch: int | None = None

    def fetch_series(self, request: Any) -> Any:
        if self.keys_at_first_fetch is None:
            self.keys_at_first_fetch = key_count(self.engine)
        return super().fetch_series(request)


def test_every_expected_key_exists_before_the_first_fetch(db_url: str) -> None:
    assert Cli.on(db_url)("discover", "--grain", "day").exit_code == 0
    engine = open_engine(db_url)
    try:
        source = CountingSource(engine)
        done = Cli.on(db_url)(*SYNC, deps=Deps(source=source))
        assert done.exit_code == 0, done.output
        assert source.keys_at_first_fetch == ACME_DAY_KEYS == key_count(engine)
    finally:
        engine.dispose()


def test_catch_up_makes_every_period_s_keys_first(db_url: str) -> None:
    cli = Cli.on(db_url, FULCRUM_SYNC_TODAY="2025-10-01")
    first = cli("sync", "--grain", "day", "--period", "2025-09-27", "--tenant", "acme")
    assert first.exit_code == 0, first.output
    engine = open_engine(db_url)
    try:
        source = CountingSource(engine)
        catch_up = ("sync", "--grain", "day", "--catch-up", "--tenant", "acme")
        done = cli(*catch_up, deps=Deps(source=source))
        assert done.exit_code == 0, done.output
        # 09-27 done before; 09-28, 09-29 and 09-30 made before the catch-up fetched anything.
        assert source.keys_at_first_fetch == 4 * ACME_DAY_KEYS == key_count(engine)
    finally:
        engine.dispose()


def test_a_key_deleted_under_a_run_fails_its_context_and_runs_no_pattern(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Cli.on(db_url)("discover", "--grain", "day").exit_code == 0
    gone = "sync:day:2025-09-30:acme::orders"
    claim, claim_many = runs.claim, runs.claim_many
    claim_context = claims.claim_context

    def reset(engine: Engine, run_keys: list[str]) -> None:
        if gone in run_keys:  # what a `state reset` between planning and claiming does
            with engine.begin() as conn:
                conn.execute(delete(t.run_items).where(t.run_items.c.run_key == gone))

    def claim_after_a_reset(engine: Engine, run_key: str, **kw: Any) -> runs.Claim:
        reset(engine, [run_key])
        return claim(engine, run_key, **kw)

    def claim_many_after_a_reset(
        engine: Engine, run_keys: list[str], **kw: Any
    ) -> dict[str, runs.Claim]:
        reset(engine, run_keys)
        return claim_many(engine, run_keys, **kw)

    def claim_context_after_a_reset(engine: Engine, run_key: str, *args: Any) -> Any:
        reset(engine, [run_key])  # a sync with patterns claims a context's keys together
        return claim_context(engine, run_key, *args)

    monkeypatch.setattr(runs, "claim", claim_after_a_reset)  # a batch of one key
    monkeypatch.setattr(runs, "claim_many", claim_many_after_a_reset)  # claims ahead
    monkeypatch.setattr(claims, "claim_context", claim_context_after_a_reset)
    done = Cli.on(db_url)(*SYNC, "--json")
    assert done.exit_code == 1, done.output  # partial: one context failed
    contexts = {c["context"]: c for c in json.loads(done.stdout)["contexts"]}
    orders = contexts["acme::orders"]
    assert orders["status"] == "failed" and "deleted" in orders["error"]
    assert not orders["patterns"]
    engine = open_engine(db_url)
    try:
        with engine.connect() as conn:
            analysed = conn.execute(
                select(func.count())
                .select_from(t.pattern_results)
                .where(t.pattern_results.c.metric_id == "orders")
            ).scalar_one()
            stored = conn.execute(
                select(func.count())
                .select_from(t.metric_time_series)
                .where(t.metric_time_series.c.metric_id == "orders")
            ).scalar_one()
        assert analysed == 0 and stored == 0  # never analysed data without the period
    finally:
        engine.dispose()
    monkeypatch.setattr(runs, "claim", claim)
    monkeypatch.setattr(runs, "claim_many", claim_many)
    monkeypatch.setattr(claims, "claim_context", claim_context)
    again = Cli.on(db_url)(*SYNC, "--json")  # the next plain run does it
    assert again.exit_code == 0, again.output
    statuses = {c["context"]: c["status"] for c in json.loads(again.stdout)["contexts"]}
    assert statuses["acme::orders"] == "succeeded"


ITEMS = [
    runs.RunItem(
        f"pattern:day:2025-09-30:acme::orders::p{i}",
        "pattern",
        "day",
        DAY,
        "acme",
        "orders",
        f"p{i}",
    )
    for i in range(3)
]


def test_claim_many_reads_keys_another_process_made_and_took(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race behind ``KeyError: 'pattern:day:…'``: between this process's read and its
    insert, another one made the rows and claimed them."""
    make = runs.ensure_items_in

    def raced(conn: Connection, items: list[runs.RunItem], run_id: str | None = None) -> None:
        make(conn, items, "other-run")
        conn.execute(
            t.run_items.update()
            .where(t.run_items.c.run_key.in_([i.run_key for i in items]))
            .values(status="running", lease_owner="elsewhere:1:other", lease_expires_at=_later())
        )
        make(conn, items, run_id)

    monkeypatch.setattr(runs, "ensure_items_in", raced)
    keys = [i.run_key for i in ITEMS]
    claims = runs.claim_many(
        engine, keys, owner="here:2:me", run_id="me", lease_seconds=60, items=ITEMS
    )
    assert claims == {k: runs.Claim.BUSY for k in keys}


def test_a_vanished_key_is_gone_not_done(engine: Engine) -> None:
    assert runs.claim(engine, ITEMS[0].run_key, owner="h:1:a", run_id="a", lease_seconds=60) is (
        runs.Claim.GONE
    )
    claims = runs.claim_many(
        engine, [ITEMS[0].run_key], owner="h:1:a", run_id="a", lease_seconds=60
    )
    assert claims == {ITEMS[0].run_key: runs.Claim.GONE}


def test_reset_leaves_the_pending_keys_of_a_live_run(engine: Engine) -> None:
    live = run_records.start_run(engine, "sync", {})  # this process: alive
    runs.ensure_items(engine, ITEMS[:2], live)
    runs.ensure_items(engine, ITEMS[2:])  # nobody's
    scope = StoreScope(Scope("acme", "orders", Grain.DAY, None, DAY, DAY), 1)
    parts = ("pattern keys",)
    assert count_parts(engine, scope, parts) == ({"pattern keys": 1}, 2)
    assert delete_parts(engine, scope, parts) == ({"pattern keys": 1}, 2)
    run_records.finish_run(engine, live, "interrupted", {})  # the run ended: its keys are free
    assert delete_parts(engine, scope, parts) == ({"pattern keys": 2}, 0)


def test_pending_pattern_keys_of_a_synced_period_are_unfinished(engine: Engine) -> None:
    sync = runs.RunItem("sync:day:2025-09-30:acme::orders", "sync", "day", DAY, "acme", "orders")
    runs.ensure_items(engine, [sync, *ITEMS])
    assert progress.unfinished_patterns(engine, "day", pending=True) == []  # not synced yet
    assert runs.claim(engine, sync.run_key, owner="h:1:a", run_id="a", lease_seconds=60) is (
        runs.Claim.CLAIMED
    )
    runs.complete(engine, sync.run_key, owner="h:1:a", succeeded=True)
    found = progress.unfinished_patterns(engine, "day", pending=True)
    assert [r["run_key"] for r in found] == sorted(i.run_key for i in ITEMS)
    assert progress.unfinished_patterns(engine, "day") == []  # status: a plan, not a failure


def _later() -> Any:
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) + timedelta(minutes=5)


def test_catch_up_fills_pattern_keys_an_older_run_never_made(db_url: str) -> None:
    """A hole left before keys were made up front: a synced period with no pattern key."""
    cli = Cli.on(db_url, FULCRUM_SYNC_TODAY="2025-10-01")
    catch_up = ["sync", "--grain", "day", "--catch-up", "--tenant", "acme"]
    first = cli(*SYNC[:4], "2025-09-27", *SYNC[5:])
    assert first.exit_code == 0, first.output
    assert cli(*catch_up).exit_code == 0
    engine = open_engine(db_url)
    try:
        hole = date(2025, 9, 28)
        with engine.connect() as conn:
            complete = conn.execute(select(t.pattern_results)).all()
        with engine.begin() as conn:
            key, result = t.run_items.c, t.pattern_results.c
            conn.execute(delete(t.run_items).where(key.kind == "pattern", key.period == hole))
            conn.execute(delete(t.pattern_results).where(result.analysis_period == hole))
        again = cli(*catch_up)
        assert again.exit_code == 0, again.output
        with engine.connect() as conn:
            after = conn.execute(select(t.pattern_results)).all()
            statuses = set(conn.execute(select(key.status)).scalars())
        assert len(after) == len(complete) and statuses == {"succeeded"}
    finally:
        engine.dispose()
