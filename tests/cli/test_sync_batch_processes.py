"""A sync that stores its contexts in batches (issue 26, services/run/write_batch.py), under
real processes: SIGKILL, SIGTERM and ``pg_terminate_backend`` at a moment picked by the
process's own context lines, then what the next plain run does; and processes working
overlapping contexts at once on PostgreSQL (the batch locks status rows in key order).

A killed process loses at most its batch not yet stored (its keys are redone by the next
run, nothing doubled); a context's log line is written only once its batch is stored.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from cli_invoke import fulcrum_argv, process_env, run_process
from process_moments import held_after
from sqlalchemy import Engine, select
from test_sync_processes import prepare
from test_truthful_runs import _terminate, digest, run_rows

from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import open_engine

pytestmark = pytest.mark.slow

METRICS = 80
PERIOD = "2026-06-30"
SYNC = ["sync", "--grain", "day", "--period", PERIOD, "--no-patterns", "--workers", "1"]


def _url(backend: str, tmp_path: Path, request: pytest.FixtureRequest, name: str) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / name}"
    return str(request.getfixturevalue("pg_url"))


def _keys(engine: Engine) -> dict[str, tuple[str, int]]:
    c = t.run_items.c
    with engine.connect() as conn:
        return {r[0]: (r[1], r[2]) for r in conn.execute(select(c.run_key, c.status, c.attempts))}


def _prepared(url: str, tmp_path: Path, clean: str | None = None) -> dict[str, str]:
    """The catalog loaded and discovered on ``url``; ``clean`` synced to the end (the
    reference a run must match)."""
    env = process_env(url)
    prepare(url, tmp_path, env, metrics=METRICS)
    if clean is not None:
        clean_env = process_env(clean)
        prepare(clean, tmp_path, clean_env, metrics=METRICS)
        assert run_process(*SYNC, env=clean_env).returncode == 0
    return env


def _succeeded_line(line: str, rich: bool) -> str | None:
    """The run key a context line says succeeded (None: not such a line)."""
    if rich:  # a row of the context table: tenant::metric ... status
        words = line.split()
        if len(words) > 2 and "::" in words[0] and words[-1] == "succeeded":
            return f"sync:day:{PERIOD}:{words[0]}"
        return None
    event = json.loads(line) if line.startswith("{") else {}
    if event.get("event") == "context synced" and event.get("status") == "succeeded":
        return str(event["run_key"])
    return None


@contextmanager
def _run_until(
    env: dict[str, str], lines: int, rich: bool = False
) -> Iterator[tuple[Any, list[str]]]:
    """Start the sync; give it once it wrote ``lines`` context lines, with their keys, its
    writes held back until the block ends (tests/process_moments.py: it cannot finish
    first, however fast the machine). In rich mode its table comes at the end: the moment is
    when ``lines`` keys succeeded."""
    args = [*SYNC, "--log-format", "rich" if rich else "json"]
    proc = subprocess.Popen(
        fulcrum_argv(*args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    said: list[str] = []
    with held_after(env["FULCRUM_SYNC_DATABASE_URL"], proc, lines):
        # A batch's lines are written once it committed, before the process writes again.
        while len(said) < lines and not rich:
            line = proc.stdout.readline()
            if not line:
                break  # it ended first
            key = _succeeded_line(line, rich)
            if key is not None:
                said.append(key)
        assert proc.poll() is None, "the sync ended before the moment"
        yield proc, said


def _more_lines(proc: Any, rich: bool) -> list[str]:
    """The keys of the rest of the output. Read through ``proc.stdout`` itself: lines
    ``_run_until``'s reads took into its buffer are there (``communicate`` reads the pipe
    underneath and would lose them: a batch's lines come together, so some may be)."""
    out = proc.stdout.read()  # to the end: the process exits (its stderr is a few lines)
    proc.communicate(timeout=120)
    return [k for line in out.splitlines() if (k := _succeeded_line(line, rich)) is not None]


# SQLite: test_sync_processes.test_sigkill_mid_full_sync_then_rerun_completes (batched too).
@pytest.mark.parametrize("backend", ["postgresql"])
def test_sigkill_loses_at_most_the_batch_and_the_next_run_redoes_it(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    clean = f"sqlite:///{tmp_path / 'clean.db'}"
    url = _url(backend, tmp_path, request, "kill.db")
    env = _prepared(url, tmp_path, clean)
    moment = random.Random(f"{backend}-{uuid.uuid4()}").randint(1, METRICS // 2)
    with _run_until(env, moment) as (proc, said):
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    engine = open_engine(url)
    try:
        killed = _keys(engine)
        assert {killed[k][0] for k in said} == {"succeeded"}  # a line never claims more
        held = {k for k, (status, _a) in killed.items() if status == "running"}

        rerun = run_process(*SYNC, "--json", env=env)  # the next plain run
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        contexts = json.loads(rerun.stdout)["contexts"]
        skipped = {c["run_key"] for c in contexts if c["status"] == "skipped"}
        assert skipped == {k for k, (s, _a) in killed.items() if s == "succeeded"}
        final = _keys(engine)
        assert len(final) == METRICS
        assert {s for s, _a in final.values()} == {"succeeded"}
        assert {k for k, (_s, a) in final.items() if a == 2} == held  # redone: the lost batch
        assert sum(a for _s, a in final.values()) == METRICS + len(held)
        runs = sorted(run_rows(engine), key=lambda r: r["started_at"])
        assert [r["outcome"] for r in runs if r["command"] == "sync"] == [
            "abandoned",
            "succeeded",
        ]
    finally:
        engine.dispose()
    assert digest(url) == digest(clean)


@pytest.mark.parametrize(
    ("backend", "rich"),
    [("sqlite", True), ("postgresql", False)],  # both stores, both log formats
    ids=["sqlite-rich", "postgresql-json"],
)
def test_sigterm_stores_every_context_it_logged_then_the_next_run_does_the_rest(
    backend: str, rich: bool, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    clean = f"sqlite:///{tmp_path / 'clean.db'}"
    url = _url(backend, tmp_path, request, "term.db")
    env = _prepared(url, tmp_path, clean)
    moment = random.Random(str(uuid.uuid4())).randint(1, METRICS // 2)
    with _run_until(env, moment, rich) as (proc, said):
        proc.send_signal(signal.SIGTERM)
    said += _more_lines(proc, rich)
    assert proc.returncode == 143
    engine = open_engine(url)
    try:
        keys = _keys(engine)
        assert {keys[k][0] for k in said} == {"succeeded"}  # every context it logged is stored
        assert {k for k, (s, _a) in keys.items() if s == "succeeded"} == set(said)
        assert "running" not in {s for s, _a in keys.values()}
        assert [r["outcome"] for r in run_rows(engine) if r["command"] == "sync"] == ["interrupted"]
        rerun = run_process(*SYNC, "--json", env=env)
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        final = _keys(engine)
        assert {s for s, _a in final.values()} == {"succeeded"} and len(final) == METRICS
        assert {k for k, (_s, a) in final.items() if a > 1} <= set(final) - set(said)
    finally:
        engine.dispose()
    assert digest(url) == digest(clean)


def test_a_terminated_connection_is_recovered_without_doubling(tmp_path: Path, pg_url: str) -> None:
    clean = f"sqlite:///{tmp_path / 'clean.db'}"
    env = _prepared(pg_url, tmp_path, clean)
    name = f"victim_{uuid.uuid4().hex[:8]}"
    victim = {**env, "FULCRUM_SYNC_DATABASE_URL": f"{pg_url}&application_name={name}"}
    with _run_until(victim, random.Random(name).randint(1, METRICS // 2)) as (proc, said):
        killed = _terminate(name)
    said += _more_lines(proc, rich=False)
    assert killed >= 1
    assert proc.returncode == 0  # reconnected: the transaction in flight ran again, whole
    engine = open_engine(pg_url)
    try:
        keys = _keys(engine)
        assert len(said) == len(set(said)) == len(keys) == METRICS  # each logged once
        assert set(said) == set(keys)
        assert set(keys.values()) == {("succeeded", 1)}
        assert [r["outcome"] for r in run_rows(engine) if r["command"] == "sync"] == ["succeeded"]
    finally:
        engine.dispose()
    assert digest(pg_url) == digest(clean)


def test_processes_batching_overlapping_contexts_do_not_deadlock(
    tmp_path: Path, pg_url: str
) -> None:
    """Two periods of the same contexts at once (each by two processes): their batches lock
    the same status rows, in the same order."""
    env = _prepared(pg_url, tmp_path)
    assert run_process(*SYNC[:4], "2026-06-28", *SYNC[5:], env=env).returncode == 0
    periods = ["2026-06-29", "2026-06-29", PERIOD, PERIOD]
    procs = [
        subprocess.Popen(
            fulcrum_argv(*SYNC[:4], period, *SYNC[5:], "--json"),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for period in periods
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0] * len(procs), [e[-2000:] for _o, e in outs]
    engine = open_engine(pg_url)
    try:
        keys = _keys(engine)
    finally:
        engine.dispose()
    assert len(keys) == 3 * METRICS
    assert set(keys.values()) == {("succeeded", 1)}  # each key done once, by one process
