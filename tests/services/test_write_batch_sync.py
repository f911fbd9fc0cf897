"""A sync's contexts stored in batches (issue 26, services/run/write_batch.py): a context is
reported only once its batch committed; a batch the database refuses is stored context by
context; an error or a stop stores the batch before the run gives its keys back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_invoke import Cli
from sqlalchemy import Engine, select

from fulcrum_sync.domain import ContextResult
from fulcrum_sync.services.run import context_store, sync_context, sync_run, write_batch
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import open_engine

SYNC = ["sync", "--grain", "day", "--no-patterns", "--workers", "1", "--json"]
DAY0, DAY1 = "2025-09-29", "2025-09-30"


def keys(engine: Engine) -> dict[str, str]:
    c = t.run_items.c
    with engine.connect() as conn:
        return {k: s for k, s in conn.execute(select(c.run_key, c.status).where(c.kind == "sync"))}


def status_periods(engine: Engine, metric: str) -> set[str]:
    c = t.metric_sync_status.c
    with engine.connect() as conn:
        rows = conn.execute(select(c.period).where(c.metric_id == metric)).scalars()
        return {str(p) for p in rows}


@pytest.fixture
def big_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of every context (their size made independent of the machine's pace)."""
    monkeypatch.setattr(write_batch, "BATCH_SECONDS", 3600.0)


def test_a_context_is_reported_only_once_its_batch_is_stored(
    db_url: str, big_batches: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = Cli.on(db_url)
    assert cli(*SYNC, "--period", DAY0).exit_code == 0
    engine = open_engine(db_url)
    seen: list[tuple[str, str, set[str]]] = []
    log_context = sync_run.log_context

    def checked(run_id: str | None, res: ContextResult) -> None:  # what another process sees
        seen.append(
            (res.status, keys(engine)[res.run_key], status_periods(engine, res.context.metric))
        )
        log_context(run_id, res)

    monkeypatch.setattr(sync_run, "log_context", checked)
    try:
        done = cli(*SYNC, "--period", DAY1)
        assert done.exit_code == 0, done.output
    finally:
        engine.dispose()
    contexts = json.loads(done.stdout)["contexts"]
    assert len(seen) == len(contexts) > 2
    assert {(s, k) for s, k, _ in seen} == {("succeeded", "succeeded")}
    assert all(DAY1 in periods for _, _, periods in seen)  # its statuses were committed


def test_a_batch_the_database_refuses_is_stored_context_by_context(
    sqlite_url: str, big_batches: None
) -> None:
    cli = Cli.on(sqlite_url)
    assert cli(*SYNC, "--period", DAY0).exit_code == 0
    engine = open_engine(sqlite_url)
    try:
        with engine.begin() as conn:  # one series of one context fails: the batch with it
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON metric_dimensional_time_series "
                "WHEN NEW.metric_id = 'new_revenue' AND NEW.dimension_name = 'channel' "
                "BEGIN SELECT RAISE(ABORT, 'no channel'); END"
            )
        done = cli(*SYNC, "--period", DAY1)
        assert done.exit_code == 1, done.output
        contexts = json.loads(done.stdout)["contexts"]
        by_status = {c["status"] for c in contexts if c["context"].endswith("new_revenue")}
        assert by_status == {"partial"}
        others = [c for c in contexts if not c["context"].endswith("new_revenue")]
        assert len(others) > 2 and {c["status"] for c in others} == {"succeeded"}
        states = keys(engine)
        assert {states[c["run_key"]] for c in others} == {"succeeded"}
        assert {states[c["run_key"]] for c in contexts if c not in others} == {"failed"}
        assert all(DAY1 in status_periods(engine, c["context"].split(":")[-1]) for c in others)
    finally:
        engine.dispose()


def test_an_error_stores_the_batch_before_the_keys_are_released(
    db_url: str, big_batches: None, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    cli = Cli.on(db_url)
    assert cli(*SYNC, "--period", DAY0).exit_code == 0
    fetch = sync_context.fetch_context
    calls = {"n": 0}

    def failing(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("boom")  # an unexpected error: the run ends failed
        return fetch(*args, **kwargs)

    monkeypatch.setattr(sync_context, "fetch_context", failing)
    caplog.clear()
    done = cli(*SYNC, "--period", DAY1)
    assert done.exit_code != 0
    engine = open_engine(db_url)
    try:
        states = keys(engine)
        day1 = {k: s for k, s in states.items() if DAY1 in k}
        assert sorted(day1.values()).count("succeeded") == 3  # the three fetched before it
        assert "running" not in day1.values()
        with engine.connect() as conn:
            outcome = conn.execute(select(t.runs.c.outcome).order_by(t.runs.c.started_at)).all()
        assert outcome[-1][0] == "failed"
    finally:
        engine.dispose()
    logged = [r for r in caplog.records if r.getMessage() == "context synced"]
    assert len(logged) == 3  # each stored context logged once its batch was stored


def test_only_contexts_without_patterns_to_run_are_batched(
    sqlite_url: str, tmp_path: Path, big_batches: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    metrics = [
        {
            "metric_id": f"m{i}",
            "measure": f"orders.amount_{i}",
            "time_dimension": "orders.created_at",
            "dimensions": [{"dimension_id": "region", "member": "orders.region"}],
            "grains": ["day"],
            **({"patterns": ["data_quality"]} if i % 2 else {}),
        }
        for i in range(6)
    ]
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(yaml.safe_dump({"tenants": [{"tenant_id": 3, "identifier": "mix",
                                                     "metrics": metrics}]}))  # fmt: skip
    cli = Cli.on(sqlite_url)
    assert cli("catalog", "load", str(catalog)).exit_code == 0
    batched: list[str] = []
    store_contexts = context_store.store_contexts

    def spied(engine: Engine, batch: list[Any]) -> list[ContextResult]:
        batched.extend(p.result.context.metric for p in batch)
        return store_contexts(engine, batch)

    monkeypatch.setattr(context_store, "store_contexts", spied)
    done = cli("sync", "--grain", "day", "--period", DAY1, "--workers", "1", "--json")
    assert done.exit_code == 0, done.output
    contexts = json.loads(done.stdout)["contexts"]
    assert {c["status"] for c in contexts} == {"succeeded"} and len(contexts) == 6
    assert sorted(batched) == ["m0", "m2", "m4"]  # the others: their own transaction
    ran = {c["context"].split(":")[-1]: [p["status"] for p in c["patterns"]] for c in contexts}
    assert [ran[m] for m in ("m1", "m3", "m5")] == [["succeeded"]] * 3  # read what was stored
    engine = open_engine(sqlite_url)
    try:
        assert set(keys(engine).values()) == {"succeeded"}
    finally:
        engine.dispose()
