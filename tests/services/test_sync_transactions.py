"""A context's sync commits its series, their statuses and its run key together (issue 19);
its claim commits with the next contexts' (issue 26: claims a batch ahead,
services/jobs/claim_ahead.py), and so do its writes when it has no patterns to run
(services/run/write_batch.py). A series the database refuses still fails alone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from cli_invoke import Cli, Ran
from sqlalchemy import Engine, event, select

from fulcrum_sync.services.deps import Deps
from fulcrum_sync.services.jobs import claim_ahead
from fulcrum_sync.services.run import write_batch
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import open_engine

SYNC = ["sync", "--grain", "day", "--no-patterns", "--workers", "1", "--json"]


@pytest.fixture
def counted(db_url: str) -> Iterator[tuple[Engine, dict[str, int]]]:
    """The engine ``sync`` opens (pooled), with its commits counted."""
    engine = open_engine(db_url, pooled=True)
    commits = {"n": 0}

    def count(_conn: Any) -> None:
        commits["n"] += 1

    event.listen(engine, "commit", count)
    yield engine, commits
    engine.dispose()


def _sync(url: str, engine: Engine, *args: str) -> Ran:
    """The sync on ``engine``, whose commits the test counts."""
    return Cli.on(url)(*SYNC, *args, deps=Deps(engine=engine))


def test_contexts_claim_in_batches_and_commit_their_work_once(
    db_url: str, counted: tuple[Engine, dict[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, commits = counted
    assert _sync(db_url, engine, "--period", "2025-09-29").exit_code == 0  # FULL, discovery

    # Claims cover an hour of work ahead: the first key alone, then all the others at once;
    # so do the writes: every context's in one transaction (services/run/write_batch.py).
    # (The batch sizes follow the pace of the run; here they are made independent of it.)
    monkeypatch.setattr(claim_ahead, "AHEAD_SECONDS", 3600.0)
    monkeypatch.setattr(write_batch, "BATCH_SECONDS", 3600.0)
    commits["n"] = 0
    done = _sync(db_url, engine, "--period", "2025-09-30")
    assert done.exit_code == 0, done.output
    worked = commits["n"]
    contexts = json.loads(done.stdout)["contexts"]
    assert {c["status"] for c in contexts} == {"succeeded"}
    assert all(len(c["series"]) >= 3 for c in contexts)  # a base series and dimensions
    assert 2 < len(contexts) <= claim_ahead.MAX_BATCH

    commits["n"] = 0
    again = _sync(db_url, engine, "--period", "2025-09-30")
    assert again.exit_code == 0, again.output
    assert {c["status"] for c in json.loads(again.stdout)["contexts"]} == {"skipped"}
    per_run = commits["n"]  # start, record keys, release, finish: no claim per done key
    assert per_run <= 4
    assert worked - per_run == 1 + 2  # one write for all the contexts + two claims
    with engine.connect() as conn:
        keys = conn.execute(
            select(t.run_items.c.status, t.run_items.c.attempts).where(
                t.run_items.c.run_key.in_([c["run_key"] for c in contexts])
            )
        ).all()
    assert keys and set(keys) == {("succeeded", 1)}  # each claimed once


def test_a_series_the_database_refuses_fails_alone(sqlite_url: str) -> None:
    """When the context's one transaction fails, its series are stored one by one."""
    engine = open_engine(sqlite_url, pooled=True)
    try:
        scope = ("--tenant", "acme", "--metric", "new_revenue")
        assert _sync(sqlite_url, engine, "--period", "2025-09-29", *scope).exit_code == 0
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_channel BEFORE INSERT ON metric_dimensional_time_series "
                "WHEN NEW.dimension_name = 'channel' BEGIN SELECT RAISE(ABORT, 'no channel'); END"
            )
        done = _sync(sqlite_url, engine, "--period", "2025-09-30", *scope)
        assert done.exit_code == 1, done.output
        [context] = json.loads(done.stdout)["contexts"]
        assert context["status"] == "partial"
        series = {s["dimension"]: s for s in context["series"]}
        assert not series["channel"]["success"] and "no channel" in series["channel"]["error"]
        assert all(s["success"] for d, s in series.items() if d != "channel")
        assert series[None]["inserted"] == 1  # the new day of the base series was stored
        with engine.connect() as conn:
            status = dict(
                conn.execute(
                    select(t.metric_sync_status.c.dimension, t.metric_sync_status.c.status).where(
                        t.metric_sync_status.c.metric_id == "new_revenue"
                    )
                ).all()
            )
            key = conn.execute(
                select(t.run_items.c.status).where(t.run_items.c.run_key == context["run_key"])
            ).scalar_one()
        assert status == {
            "": "succeeded",
            "region": "succeeded",
            "channel": "failed",
            "plan": "succeeded",
        }
        assert key == "failed"
    finally:
        engine.dispose()
