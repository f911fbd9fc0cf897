"""A context's pattern keys claimed inside another transaction, its pattern inputs read in one
statement, and pooled PostgreSQL connections pinged only after sitting idle (issue 26)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, timedelta

import psycopg
import pytest
from sqlalchemy import Engine, event, func, select

from fulcrum_sync.domain import Window
from fulcrum_sync.store import engine as engine_module
from fulcrum_sync.store import leases, pattern_data, runs
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.claims import Claimant, claim_context, take_in
from fulcrum_sync.store.engine import open_engine, reconnecting, translate_errors
from fulcrum_sync.store.runs import Claim, RunItem
from fulcrum_sync.store.series import SeriesKey, replace_series

D0 = date(2025, 7, 1)
PERIOD = date(2025, 7, 20)
SYNC = RunItem("sync:day:2025-07-20:acme::revenue", "sync", "day", PERIOD, "acme", "revenue")
PATTERNS = [
    RunItem(f"pattern:day:2025-07-20:acme::revenue:{n}", "pattern", "day", PERIOD, "acme", "r", n)
    for n in ("data_quality", "forecasting")
]
PATTERN_KEYS = [i.run_key for i in PATTERNS]


def who(owner: str) -> Claimant:
    return Claimant(owner, "run-" + owner, 60)


def statuses(engine: Engine) -> dict[str, tuple[str, str | None]]:
    c = t.run_items.c
    with engine.connect() as conn:
        return {k: (s, o) for k, s, o in conn.execute(select(c.run_key, c.status, c.lease_owner))}


def test_a_context_found_done_has_its_pattern_keys_claimed_in_the_same_transaction(
    engine: Engine,
) -> None:
    runs.ensure_items(engine, [SYNC, *PATTERNS])
    first, second = who("host:1:a"), who("host:2:b")
    assert claim_context(engine, SYNC.run_key, PATTERN_KEYS, first) == (Claim.CLAIMED, {})
    assert claim_context(engine, SYNC.run_key, PATTERN_KEYS, second) == (Claim.BUSY, {})
    # The first completes its sync and claims the pattern keys in that same transaction.
    with engine.begin() as conn:
        runs.complete_in(conn, runs.KeyDone(SYNC.run_key, first.owner, True))
        assert take_in(conn, PATTERN_KEYS, first) == dict.fromkeys(PATTERN_KEYS, Claim.CLAIMED)
    # The second finds the sync done and the patterns busy: nothing for it to do.
    busy = dict.fromkeys(PATTERN_KEYS, Claim.BUSY)
    assert claim_context(engine, SYNC.run_key, PATTERN_KEYS, second) == (Claim.DONE, busy)
    # Claimed again by their holder (a retried transaction): still its own.
    with engine.begin() as conn:
        assert take_in(conn, PATTERN_KEYS, first) == dict.fromkeys(PATTERN_KEYS, Claim.CLAIMED)
    runs.complete(engine, PATTERN_KEYS[0], owner=first.owner, succeeded=True)
    leases.release_all(engine, first.owner)  # the first stops before its second pattern
    got = claim_context(engine, SYNC.run_key, PATTERN_KEYS, second)
    assert got == (Claim.DONE, {PATTERN_KEYS[0]: Claim.DONE, PATTERN_KEYS[1]: Claim.CLAIMED})
    assert statuses(engine)[PATTERN_KEYS[1]] == ("running", second.owner)
    assert take_in(engine.connect(), ["pattern:day:2025-07-20:acme::gone"], first) == {
        "pattern:day:2025-07-20:acme::gone": Claim.GONE
    }


def test_saved_pattern_results_tell_which_keys_were_completed(engine: Engine) -> None:
    """A run that lost a pattern key's lease (another run took it over) leaves its record to
    that run: save_results says which keys it completed, for the run to warn of the rest."""
    runs.ensure_items(engine, PATTERNS)
    mine, other = who("host:1:a"), who("host:2:b")
    with engine.begin() as conn:
        take_in(conn, PATTERN_KEYS, mine)
    with engine.begin() as conn:  # the second key's lease ran out and another run took it
        conn.execute(
            t.run_items.update()
            .where(t.run_items.c.run_key == PATTERN_KEYS[1])
            .values(lease_owner=other.owner)
        )
    done = [runs.KeyDone(k, mine.owner, True, {"n": 1}) for k in PATTERN_KEYS]
    assert pattern_data.save_results(engine, [], done) == {PATTERN_KEYS[0]}
    assert statuses(engine) == {
        PATTERN_KEYS[0]: ("succeeded", mine.owner),
        PATTERN_KEYS[1]: ("running", other.owner),
    }


def test_a_pattern_key_of_a_killed_process_on_this_host_is_taken_over(engine: Engine) -> None:
    runs.ensure_items(engine, [SYNC, *PATTERNS])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    gone = runs.new_owner("dead-run").replace(f":{os.getpid()}:", f":{dead.pid}:")
    with engine.begin() as conn:
        take_in(conn, PATTERN_KEYS, who(gone))
    with engine.begin() as conn:
        got = take_in(conn, PATTERN_KEYS, who(runs.new_owner("alive")))
    assert got == dict.fromkeys(PATTERN_KEYS, Claim.CLAIMED)


def test_pattern_inputs_read_in_one_statement_equal_the_reads_one_by_one(engine: Engine) -> None:
    days = [D0 + timedelta(days=i) for i in range(40)]
    base = [(d, float(i)) for i, d in enumerate(days)]
    targets_rows = [
        {"tenant_id": 1, "metric_id": "revenue", "grain": "day", "date": d, "value": 5.0}
        for d in days
    ]
    with engine.begin() as conn:
        replace_series(conn, SeriesKey(1, "revenue", "day"), base)
        for dim, slices in (("region", ["eu", "us"]), ("channel", ["web"]), ("other", ["x"])):
            rows = [(d, s, float(i)) for i, d in enumerate(days) for s in slices]
            replace_series(conn, SeriesKey(1, "revenue", "day", dim), rows)
        conn.execute(t.metric_targets.insert(), targets_rows)
    history, targets = Window(D0 + timedelta(days=5), PERIOD), Window(D0, D0 + timedelta(days=35))
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    dims = ["region", "channel", "missing"]
    read = pattern_data.read_inputs(engine, 1, "revenue", "day", history, targets, dims)
    assert [s.split()[0] for s in statements if not s.startswith("BEGIN")] == ["SELECT"]
    ids = (engine, 1, "revenue", "day")
    assert read.series.equals(pattern_data.read_series(*ids, history))
    assert read.targets.equals(pattern_data.read_targets(*ids, targets))
    assert len(read.series) == 15 and len(read.targets) == 36
    assert set(read.dimensions) == {"region", "channel", "missing"}
    for dim in ("region", "channel", "missing"):
        one = pattern_data.read_dimension(*ids, dim, history)
        assert read.dimensions[dim].reset_index(drop=True).equals(one), dim
    assert read.dimensions["missing"].empty and len(read.dimensions["region"]) == 30


def _terminate(pid: int, url: str) -> None:
    admin = url.split("?")[0].replace("+psycopg", "")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_a_pooled_connection_dropped_while_idle_is_replaced_before_use(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No pre-ping on every checkout: one after the connection sat idle in the pool, and a
    connection dropped between quick uses is replaced by running the transaction again."""
    engine = open_engine(pg_url, pooled=True)
    tries: list[int] = []

    @reconnecting
    def backend(engine: Engine) -> int:
        with translate_errors(engine, "read from"), engine.connect() as conn:
            tries.append(1)
            pid = int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
            conn.execute(select(func.count()).select_from(t.runs))
            return pid

    try:
        first = backend(engine)
        assert backend(engine) == first and len(tries) == 2  # reused, no ping in between
        _terminate(first, pg_url)  # dropped between two quick uses: the transaction runs again
        second = backend(engine)
        assert second != first and len(tries) == 4
        monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_SECONDS", 0.0)
        _terminate(second, pg_url)  # dropped while idle: replaced by the ping, no retry
        third = backend(engine)
        assert third not in (first, second) and len(tries) == 5
    finally:
        engine.dispose()
