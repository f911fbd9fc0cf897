"""Real processes: two `sync --cache-load` runs at once on one PostgreSQL database load each
changed cache table once between them (the pods of one grain's sync), and say so."""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_invoke import fulcrum_argv, json_document, process_env, run_process
from sqlalchemy import select, text

from fulcrum_sync.store import tables as t
from fulcrum_sync.store.cache import read_cache_frame
from fulcrum_sync.store.engine import open_engine

pytestmark = pytest.mark.slow

METRICS = 40
SYNC = ["sync", "--grain", "day", "--cache-load", "--json", "--workers", "2"]


def _catalog(path: Path) -> Path:
    metric = {
        "time_dimension": "orders.created_at",
        "dimensions": [{"dimension_id": "region", "member": "orders.region"}],
        "grains": ["day"],
    }
    metrics = [
        {"metric_id": f"m{i:03d}", "measure": f"orders.amount_{i}", **metric}
        for i in range(METRICS)
    ]
    tenant = {"tenant_id": 7, "identifier": "loadco", "metrics": metrics}
    path.write_text(yaml.safe_dump({"tenants": [tenant]}))
    return path


def _cache_statuses(document: dict[str, Any]) -> dict[str, str]:
    return {c["context"]: c["cache"]["status"] for c in document["contexts"] if c.get("cache")}


def test_two_processes_load_each_changed_table_once(pg_url: str, tmp_path: Path):
    env = process_env(pg_url)
    for args in (
        ["catalog", "load", str(_catalog(tmp_path / "c.yaml"))],
        ["discover", "-g", "day"],
    ):
        done = run_process(*args, env=env)
        assert done.returncode == 0, done.stderr
    envs = [env, {**env, "FULCRUM_SYNC_LOG_FORMAT": "rich"}]  # both log formats at once
    procs = [
        subprocess.Popen(
            fulcrum_argv(*SYNC), env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for e in envs
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "Traceback" not in err
    documents = [json_document(out) for out, _ in outputs]
    statuses = [_cache_statuses(d) for d in documents]
    loads = Counter(ctx for s in statuses for ctx, status in s.items() if status == "succeeded")
    assert len(loads) == METRICS and set(loads.values()) == {1}, "each table loaded once"
    assert {st for s in statuses for st in s.values()} <= {"succeeded", "skipped", "unchanged"}

    engine = open_engine(pg_url)
    try:
        with engine.connect() as conn:
            runs = dict(conn.execute(select(t.runs.c.run_id, t.runs.c.summary)).all())
            records = conn.execute(select(t.cache_loads)).all()
            versions = {r.metric_id: r.version for r in conn.execute(select(t.series_versions))}
        for document, mine in zip(documents, statuses, strict=True):
            assert runs[document["run_id"]]["cache"] == dict(Counter(mine.values()))
        assert len(records) == METRICS and {r.status for r in records} == {"succeeded"}
        assert {r.metric_id: r.data_version for r in records} == versions
        for record in records:
            _assert_table_matches_state(engine, record)

        third = run_process(*SYNC, env=env)
        assert third.returncode == 0, third.stderr
        assert set(_cache_statuses(json_document(third.stdout)).values()) == {"unchanged"}
        with engine.connect() as conn:
            after = {r.metric_id: r.loaded_at for r in conn.execute(select(t.cache_loads))}
        assert after == {r.metric_id: r.loaded_at for r in records}
    finally:
        engine.dispose()


def _assert_table_matches_state(engine: Any, record: Any) -> None:
    frame = read_cache_frame(engine, record.tenant_id, record.metric_id, record.grain)
    frame = frame.astype(object).where(frame.notna(), None)  # base rows: no dimension
    wanted = sorted(_row(*r) for r in frame.itertuples(index=False))
    # The recorded name says "public." whatever the search_path: the table is in ours.
    name = record.table_name.rpartition(".")[2]
    query = text(f'SELECT date, dimension_name, dimension_slice, value FROM "{name}"')
    with engine.connect() as conn:
        got = sorted(_row(*r) for r in conn.execute(query))
    assert got == wanted, record.table_name


def _row(day: Any, name: str | None, slice_: str | None, value: float) -> tuple[Any, ...]:
    return (day, name or "", slice_ or "", value)
