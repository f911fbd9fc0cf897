"""Run keys under real processes on PostgreSQL (issue 23, items 1, 2 and 12).

- overlapping ``sync --period D`` processes with every pattern: each key succeeds exactly once;
- SIGTERM / SIGKILL at a moment picked by a condition during ``sync --catch-up``, then one plain
  catch-up: the pattern results per period equal a clean run's;
- a sync stalled on a table lock while ``state reset`` runs for its period: the reset leaves its
  keys alone and the sync still syncs every context.

``FULCRUM_SYNC_TEST_ROUNDS=N`` runs N rounds of each (1 by default); ``-s`` prints the figures.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from cli_invoke import fulcrum_argv, process_env
from sqlalchemy import Engine, func, select

from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import open_engine

pytestmark = pytest.mark.slow

ROUNDS = int(os.environ.get("FULCRUM_SYNC_TEST_ROUNDS", "1"))
PERIOD = "2026-03-09"
TODAY = "2026-03-10"  # the day after PERIOD: a catch-up's target is PERIOD
EIGHT_BEFORE = "2026-03-01"
PATTERNS = [
    "performance_status",
    "historical_performance",
    "dimension_analysis",
    "forecasting",
    "data_quality",
]
CONTEXTS = 60
KEYS_PER_CONTEXT = 1 + len(PATTERNS) + 1  # sync, each pattern, dimension_analysis twice


def generated_catalog(path: Path, metrics: int = CONTEXTS) -> Path:
    """A catalog of ``metrics`` day contexts: base + 2 dimensions each, all five patterns."""
    catalog = {
        "tenants": [
            {
                "tenant_id": 7,
                "identifier": "genco",
                "metrics": [
                    {
                        "metric_id": f"g{i:03d}",
                        "measure": f"orders.amount_{i}",
                        "time_dimension": "orders.created_at",
                        "dimensions": [
                            {"dimension_id": d, "member": f"orders.{d}"}
                            for d in ("region", "channel")
                        ],
                        "grains": ["day"],
                        "patterns": PATTERNS,
                        "targets": {"day": 1000 + i},
                    }
                    for i in range(metrics)
                ],
            }
        ]
    }
    path.write_text(yaml.safe_dump(catalog))
    return path


@pytest.fixture
def schema(pg_database: str) -> Iterator[Any]:
    """Make fresh PostgreSQL schemas (one URL per call); drop them afterwards."""
    made: list[str] = []
    plain = pg_database.replace("+psycopg", "")

    def new() -> str:
        name = f"k_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{name}"')
        made.append(name)
        return f"{pg_database}?options=-csearch_path%3D{name}"

    yield new
    with psycopg.connect(plain, autocommit=True) as conn:
        for name in made:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def env_for(url: str) -> dict[str, str]:
    return {**process_env(url), "FULCRUM_SYNC_TODAY": TODAY}


def run_ok(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(fulcrum_argv(*args), env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stderr[-3000:]}"
    return done


def start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        fulcrum_argv(*args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def pattern_results(engine: Engine) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """Every stored pattern result by (metric, pattern, dimension, period): what it says."""
    p = t.pattern_results.c
    query = select(
        p.metric_id,
        p.pattern,
        p.dimension,
        p.analysis_period,
        p.status,
        p.window_start,
        p.window_end,
        p.result,
        p.error,
    )
    with engine.connect() as conn:
        return {
            tuple(r[:4]): (r[4], r[5], r[6], json.dumps(r[7], sort_keys=True), r[8])
            for r in conn.execute(query)
        }


def per_period(results: dict[tuple[Any, ...], tuple[Any, ...]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for key in results:
        counts[str(key[3])] = counts.get(str(key[3]), 0) + 1
    return dict(sorted(counts.items()))


def key_rows(engine: Engine) -> list[tuple[str, str, str, int]]:
    c = t.run_items.c
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(c.run_key, c.kind, c.status, c.attempts))]


def count_succeeded(engine: Engine) -> int:
    c = t.run_items.c
    with engine.connect() as conn:
        query = select(func.count()).select_from(t.run_items).where(c.status == "succeeded")
        return int(conn.execute(query).scalar_one())


# -- 1. Overlapping processes, every pattern, 60 generated contexts -------------------------


def _prepared(schema: Any, tmp_path: Path) -> tuple[str, dict[str, str]]:
    url = schema()
    env = env_for(url)
    run_ok(env, "catalog", "load", str(generated_catalog(tmp_path / "generated.yaml")))
    run_ok(env, "discover", "--grain", "day")
    return url, env


@pytest.fixture(scope="module")
def single_run(pg_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The pattern results of one plain ``sync --period D`` (the reference)."""
    plain = pg_database.replace("+psycopg", "")
    name = f"k_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    url = f"{pg_database}?options=-csearch_path%3D{name}"
    env = env_for(url)
    path = tmp_path_factory.mktemp("single") / "generated.yaml"
    run_ok(env, "catalog", "load", str(generated_catalog(path)))
    run_ok(env, "discover", "--grain", "day")
    run_ok(env, "sync", "--grain", "day", "--period", PERIOD, "--workers", "2")
    engine = open_engine(url)
    yield pattern_results(engine)
    engine.dispose()
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.mark.parametrize("processes", [2, 4])
@pytest.mark.parametrize("round_no", range(ROUNDS))
def test_overlapping_syncs_do_every_key_exactly_once(
    processes: int, round_no: int, schema: Any, tmp_path: Path, single_run: Any
) -> None:
    url, env = _prepared(schema, tmp_path)
    args = ["sync", "--grain", "day", "--period", PERIOD, "--workers", "2", "--json"]
    procs = [start(env, *args) for _ in range(processes)]
    outs = [p.communicate(timeout=900) for p in procs]
    codes = [p.returncode for p in procs]
    engine = open_engine(url)
    rows = key_rows(engine)
    results = pattern_results(engine)
    engine.dispose()
    statuses: dict[str, int] = {}
    for _key, _kind, status, _attempts in rows:
        statuses[status] = statuses.get(status, 0) + 1
    synced_by = [
        sum(1 for c in json.loads(out)["contexts"] if c["status"] == "succeeded")
        for out, _ in outs
        if out.strip()
    ]
    print(
        f"\n[overlap x{processes} round {round_no + 1}] exits={codes} keys={len(rows)} "
        f"statuses={statuses} attempts={sum(r[3] for r in rows)} synced_by={synced_by} "
        f"pattern_results={len(results)} single_run={len(single_run)}"
    )
    assert codes == [0] * processes, [err[-2000:] for _, err in outs]
    # The property of the claims: every expected key exists, succeeded, and was claimed once.
    assert len(rows) == CONTEXTS * KEYS_PER_CONTEXT
    assert {(status, attempts) for _k, _kind, status, attempts in rows} == {("succeeded", 1)}
    assert results == single_run


# -- 2. SIGTERM / SIGKILL during a catch-up, then one plain catch-up -----------------------


@pytest.fixture(scope="module")
def clean_catch_up(pg_database: str) -> Iterator[tuple[Any, int, int]]:
    """A clean run on the demo catalog: sync D-8, then catch-up; its pattern results and the
    succeeded key counts after each step."""
    plain = pg_database.replace("+psycopg", "")
    name = f"k_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    url = f"{pg_database}?options=-csearch_path%3D{name}"
    env = env_for(url)
    engine = open_engine(url)
    run_ok(env, "sync", "--grain", "day", "--period", EIGHT_BEFORE)
    after_first = count_succeeded(engine)
    run_ok(env, "sync", "--grain", "day", "--catch-up")
    total = count_succeeded(engine)
    yield pattern_results(engine), after_first, total
    engine.dispose()
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def _interrupt_at(engine: Engine, proc: subprocess.Popen[str], wanted: int, sig: int) -> int:
    """Send ``sig`` once ``wanted`` keys succeeded; return the count then (-1: it had ended)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        done = count_succeeded(engine)
        if done >= wanted:
            proc.send_signal(sig)
            return done
        time.sleep(0.02)
    return -1


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
@pytest.mark.parametrize("round_no", range(ROUNDS))
def test_interrupted_catch_up_then_plain_catch_up_equals_a_clean_run(
    sig: int, round_no: int, schema: Any, clean_catch_up: Any
) -> None:
    clean, after_first, total = clean_catch_up
    rng = random.Random(f"{sig}-{round_no}-{os.getpid()}")
    url = schema()
    env = env_for(url)
    engine = open_engine(url)
    run_ok(env, "sync", "--grain", "day", "--period", EIGHT_BEFORE)
    # A moment in the first two thirds of the catch-up's keys (a condition, not a clock).
    wanted = rng.randint(after_first + 1, after_first + (total - after_first) * 2 // 3)
    at = -1
    for _try in range(3):  # a run that finished before the moment is not a round: go again
        proc = start(env, "sync", "--grain", "day", "--catch-up")
        at = _interrupt_at(engine, proc, wanted, sig)
        _out, err = proc.communicate(timeout=120)
        if at >= 0:
            break
        wanted = after_first + (wanted - after_first) // 2 or after_first + 1
        run_ok(env, "state", "reset", "--what", "run-keys", "--grain", "day", "--yes",
               "--from", "2026-03-02", "--to", PERIOD)  # fmt: skip
    assert at >= 0, "the catch-up always finished before it could be interrupted"
    expected_code = 143 if sig == signal.SIGTERM else -signal.SIGKILL
    assert proc.returncode == expected_code, err[-2000:]
    interrupted = pattern_results(engine)
    run_ok(env, "sync", "--grain", "day", "--catch-up")
    results = pattern_results(engine)
    rows = key_rows(engine)
    engine.dispose()
    print(
        f"\n[{signal.Signals(sig).name} round {round_no + 1}] signal at {at} succeeded keys "
        f"(of {total}), exit {proc.returncode}; pattern results then {len(interrupted)}, "
        f"after the plain catch-up {len(results)} (clean {len(clean)}); "
        f"per period {per_period(results)}"
    )
    assert per_period(results) == per_period(clean)
    assert results == clean
    assert {status for _k, _kind, status, _a in rows} == {"succeeded"}


# -- 3. state reset while a sync is stalled on a table lock --------------------------------


def test_reset_during_a_stalled_sync_leaves_its_keys(schema: Any) -> None:
    url = schema()
    env = env_for(url)
    engine = open_engine(url)
    run_ok(env, "discover", "--grain", "day")  # the demo catalog: 9 day contexts
    plain, _, options = url.replace("+psycopg", "").partition("?options=")
    search_path = options.split("%3D", 1)[1]
    locker = psycopg.connect(plain)
    locker.execute(f'SET search_path TO "{search_path}"')
    locker.execute("LOCK TABLE metric_time_series IN ACCESS EXCLUSIVE MODE")
    try:
        proc = start(env, "sync", "--grain", "day", "--period", PERIOD, "--workers", "2",
                     "--json")  # fmt: skip
        # Stalled: its keys exist and some are claimed, none can finish while the lock holds.
        deadline = time.monotonic() + 120
        running = 0
        while time.monotonic() < deadline and proc.poll() is None:
            rows = key_rows(engine)
            running = sum(1 for r in rows if r[1] == "sync" and r[2] == "running")
            if running >= 2:
                break
            time.sleep(0.05)
        assert running >= 2, "the sync never claimed its keys"
        before = key_rows(engine)
        reset = run_ok(env, "state", "reset", "--what", "run-keys", "--grain", "day",
                       "--from", PERIOD, "--to", PERIOD, "--yes", "--json")  # fmt: skip
        after = key_rows(engine)
    finally:
        locker.rollback()  # releases the lock
        locker.close()
    out, err = proc.communicate(timeout=300)
    engine.dispose()
    said = json.loads(reset.stdout)
    statuses = [c["status"] for c in json.loads(out)["contexts"]] if out.strip() else []
    print(
        f"\n[reset while stalled] keys {len(before)} "
        f"({sum(1 for r in before if r[2] == 'running')} running) before the reset, "
        f"{len(after)} after; reset held={said['held']} deleted={said['deleted']}; "
        f"sync exit {proc.returncode}, contexts {statuses}"
    )
    assert said["held"] == len(before) > 9  # every key of the period: sync and pattern keys
    assert sum(said["deleted"].values()) == 0
    assert sorted(r[0] for r in after) == sorted(r[0] for r in before)
    assert proc.returncode == 0, err[-2000:]
    assert statuses.count("succeeded") == 9
