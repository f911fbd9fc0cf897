"""Real processes: overlapping `sync` runs on PostgreSQL, and a SIGKILL in the middle of one."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_invoke import fulcrum_argv, process_env, run_process
from process_moments import held_after
from sqlalchemy import func, select

from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import open_engine

pytestmark = pytest.mark.slow

METRICS = 40
DIMENSIONS = ("region", "channel", "plan")


def write_catalog(path: Path, metrics: int = METRICS) -> Path:
    catalog = {
        "tenants": [
            {
                "tenant_id": 7,
                "identifier": "loadco",
                "metrics": [
                    {
                        "metric_id": f"m{i:03d}",
                        "measure": f"orders.amount_{i}",
                        "time_dimension": "orders.created_at",
                        "dimensions": [
                            {"dimension_id": d, "member": f"orders.{d}"} for d in DIMENSIONS
                        ],
                        "grains": ["day"],
                    }
                    for i in range(metrics)
                ],
            }
        ]
    }
    path.write_text(yaml.safe_dump(catalog))
    return path


def wait_for_succeeded(engine: Any, proc: subprocess.Popen[Any], wanted: int) -> int:
    """Poll until ``wanted`` run keys succeeded (or the process ended); return the count."""
    deadline = time.monotonic() + 120
    done = 0
    while time.monotonic() < deadline and proc.poll() is None:
        with engine.connect() as conn:
            done = conn.execute(
                select(func.count())
                .select_from(t.run_items)
                .where(t.run_items.c.status == "succeeded")
            ).scalar_one()
        if done >= wanted:
            break
        time.sleep(0.05)
    return done


def prepare(url: str, tmp_path: Path, env: dict[str, str], metrics: int = METRICS) -> None:
    catalog = write_catalog(tmp_path / "catalog.yaml", metrics)
    for args in (["catalog", "load", str(catalog)], ["discover", "--grain", "day"]):
        done = run_process(*args, env=env)
        assert done.returncode == 0, done.stderr


def test_two_processes_do_every_key_exactly_once(pg_url: str, tmp_path: Path):
    env = process_env(pg_url)
    prepare(pg_url, tmp_path, env)
    args = [
        "sync",
        "--grain",
        "day",
        "--period",
        "2025-12-31",
        "--no-patterns",
        "--json",
        "--workers",
        "2",
    ]
    procs = [
        subprocess.Popen(
            fulcrum_argv(*args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    done = [
        {c["context"] for c in json.loads(out)["contexts"] if c["status"] == "succeeded"}
        for out, _ in outputs
    ]
    assert done[0].isdisjoint(done[1])
    assert len(done[0] | done[1]) == METRICS
    assert done[0] and done[1], "both processes should have taken part of the work"
    engine = open_engine(pg_url)
    with engine.connect() as conn:
        attempts = conn.execute(select(t.run_items.c.attempts, t.run_items.c.status)).all()
        assert len(attempts) == METRICS
        assert {(a, s) for a, s in attempts} == {(1, "succeeded")}
    engine.dispose()


def _count_per_series(url: str) -> dict[tuple[str, str], int]:
    engine = open_engine(url)
    d = t.metric_dimensional_time_series.c
    b = t.metric_time_series.c
    with engine.connect() as conn:
        counts = {
            (r[0], r[1]): r[2]
            for r in conn.execute(
                select(d.metric_id, d.dimension_name, func.count(func.distinct(d.date))).group_by(
                    d.metric_id, d.dimension_name
                )
            )
        }
        for r in conn.execute(select(b.metric_id, func.count()).group_by(b.metric_id)):
            counts[(r[0], "")] = r[1]
        total = conn.execute(select(func.count()).select_from(t.metric_time_series)).scalar_one()
        distinct = conn.execute(
            select(func.count()).select_from(select(b.metric_id, b.date).distinct().subquery())
        ).scalar_one()
        assert total == distinct  # no key stored twice
    engine.dispose()
    return counts


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_sigkill_mid_full_sync_then_rerun_completes(backend: str, tmp_path: Path, request):
    url = (
        f"sqlite:///{tmp_path / 'kill.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    env = process_env(url)
    prepare(url, tmp_path, env, metrics=60)
    args = ["sync", "--grain", "day", "--period", "2026-06-30", "--no-patterns", "--workers", "1"]
    proc = subprocess.Popen(
        fulcrum_argv(*args), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    with held_after(url, proc, 5) as done:  # its writes held: it cannot finish meanwhile
        assert proc.poll() is None, "sync finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    engine = open_engine(url)
    with engine.connect() as conn:  # claimed, not stored: its batch (write_batch.py), ahead
        held = conn.execute(
            select(func.count()).select_from(t.run_items).where(t.run_items.c.status == "running")
        ).scalar_one()
    engine.dispose()
    assert 5 <= done < 60

    rerun = run_process(*args, "--json", env=env)
    assert rerun.returncode == 0, rerun.stderr
    payload = json.loads(rerun.stdout)
    statuses = [c["status"] for c in payload["contexts"]]
    assert statuses.count("succeeded") + statuses.count("skipped") == 60
    assert statuses.count("skipped") >= 5  # finished keys are not done twice

    counts = _count_per_series(url)
    # Every series holds its whole FULL window (365 days): none is half replaced.
    base = {k: v for k, v in counts.items() if k[1] == ""}
    assert len(base) == 60 and set(base.values()) == {365}
    dims = {k: v for k, v in counts.items() if k[1]}
    assert len(dims) == 60 * len(DIMENSIONS) and set(dims.values()) == {365}
    engine = open_engine(url)
    with engine.connect() as conn:
        items = conn.execute(select(t.run_items.c.status, t.run_items.c.attempts)).all()
    engine.dispose()
    assert {s for s, _ in items} == {"succeeded"}
    assert sum(a for _, a in items) == 60 + held  # only the keys it held ran twice


def test_sigterm_finishes_or_releases_then_next_run_completes(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'term.db'}"
    env = process_env(url)
    prepare(url, tmp_path, env, metrics=60)
    args = ["sync", "--grain", "day", "--period", "2026-06-30", "--no-patterns", "--workers", "2"]
    proc = subprocess.Popen(
        fulcrum_argv(*args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    with held_after(url, proc, 3):  # its writes held: it cannot finish meanwhile
        assert proc.poll() is None, "sync finished before SIGTERM could be sent"
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)  # well inside a pod's 30 s grace period
    assert time.monotonic() - sent < 30
    assert proc.returncode == 143
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert events[-1]["event"] == "sync finished" and events[-1]["outcome"] == "interrupted"
    engine = open_engine(url)
    with engine.connect() as conn:
        statuses = [r[0] for r in conn.execute(select(t.run_items.c.status))]
    assert "running" not in statuses  # finished or released, none left claimed
    assert 3 <= statuses.count("succeeded") < 60

    rerun = run_process(*args, "--json", env=env)
    assert rerun.returncode == 0, rerun.stderr
    with engine.connect() as conn:
        statuses = [r[0] for r in conn.execute(select(t.run_items.c.status))]
    engine.dispose()
    assert statuses.count("succeeded") == 60
