"""Real processes: a ``sync --cache-load`` holding its loads (its load blocked on a table
lock another session holds), a second ``sync --cache-load`` or ``cache-load`` beside it, in
either log format, then the holder SIGTERMed or SIGKILLed.

The second process leaves the held loads to the holder (skipped, recorded by nobody but the
holder) and ends 0. SIGTERM: the holder's batch in flight finishes and is recorded, exit 143.
SIGKILL: its loads die with its session, and the next plain ``cache-load`` loads them. Either
way the cache tables equal the state and the run after loads nothing.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
from cli_invoke import json_document, process_env, run_process
from sqlalchemy import Engine, select, text
from test_cache_load_sigterm import (
    METRICS,
    load_blocked_on_its_tables,
    wait_until,
    write_catalog,
)

from fulcrum_sync.services.cache.destination import LOADING_ELSEWHERE
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.cache import read_cache_frame
from fulcrum_sync.store.engine import open_engine

pytestmark = pytest.mark.slow

FIRST, NEXT = "2025-09-30", "2025-10-01"
SYNC = ("sync", "--grain", "day", "--no-patterns", "--cache-load", "--json", "--period")
CACHE_LOAD = ("cache-load", "--grain", "day", "--json")
ADVISORY = (
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


def _statuses(document: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    """Each context's cache status and reason, from a sync or cache-load document."""
    out = {}
    for c in document["contexts"]:
        cache = c.get("cache", c)
        if "status" in cache:
            out[c["context"]] = (cache["status"], cache.get("skip_reason"))
    return out


def _check_tables(engine: Engine) -> None:
    """Every table recorded loaded holds the state's series, at the state's data version."""
    with engine.connect() as conn:
        records = conn.execute(select(t.cache_loads)).all()
        versions = {r.metric_id: r.version for r in conn.execute(select(t.series_versions))}
    assert {r.metric_id for r in records} == set(METRICS)
    assert {r.status for r in records} == {"succeeded"}
    assert {r.metric_id: r.data_version for r in records} == versions
    for record in records:
        frame = read_cache_frame(engine, record.tenant_id, record.metric_id, record.grain)
        name = record.table_name.rpartition(".")[2]
        with engine.connect() as conn:
            got = sorted(
                (r[0], float(r[1])) for r in conn.execute(text(f'SELECT date, value FROM "{name}"'))
            )
        assert got == sorted(
            (d, float(v)) for d, v in zip(frame["date"], frame["value"], strict=True)
        )


CASES = [
    pytest.param("SIGTERM", "json", (*SYNC, NEXT, "--log-format", "rich"), id="term-sync"),
    pytest.param("SIGTERM", "rich", (*CACHE_LOAD, "--log-format", "json"), id="term-cacheload"),
    pytest.param("SIGKILL", "json", (*CACHE_LOAD, "--log-format", "rich"), id="kill-cacheload"),
    pytest.param("SIGKILL", "rich", (*SYNC, NEXT, "--log-format", "json"), id="kill-sync"),
]


@pytest.mark.parametrize(("sig", "fmt", "beside"), CASES)
def test_a_holder_signalled_beside_another_loader(
    pg_url: str, tmp_path: Path, sig: str, fmt: str, beside: tuple[str, ...]
) -> None:
    env = process_env(pg_url)
    for args in (
        ["catalog", "load", str(write_catalog(tmp_path / "c.yaml"))],
        [*SYNC, FIRST],  # creates the tables the lock holds
    ):
        done = run_process(*args, env=env)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    with load_blocked_on_its_tables(pg_url, env, *SYNC, NEXT, "--log-format", fmt) as (
        proc,
        locker,
        watcher,
        err,
    ):
        other = run_process(*beside, env=env)  # to its end, while the holder holds
        assert other.returncode == 0, other.stdout[-2000:] + other.stderr
        assert "Traceback" not in other.stderr
        seen = _statuses(json_document(other.stdout))
        assert {s for s, _ in seen.values()} == {"skipped"}, seen
        assert {r for _, r in seen.values()} == {LOADING_ELSEWHERE}
        if sig == "SIGTERM":
            proc.send_signal(signal.SIGTERM)
            wait_until(lambda: any("Received SIGTERM" in e for e in err), "SIGTERM heard", proc)
            locker.rollback()  # the batch in flight can finish now
            out = proc.communicate(timeout=120)[0]
            assert proc.returncode == 143, out[-2000:] + "".join(err)
            mine = _statuses(json_document(out))
            assert {s for s, _ in mine.values()} == {"succeeded"}, mine
        else:
            proc.kill()
            proc.wait()
            assert proc.returncode == -signal.SIGKILL
            gone = lambda: not watcher.execute(ADVISORY).fetchone()[0]  # type: ignore[index]  # noqa: E731
            wait_until(gone, "the killed holder's loads let go", _Done())  # type: ignore[arg-type]
            locker.rollback()
        assert "Traceback" not in "".join(err)

    engine = open_engine(pg_url)
    try:
        if sig == "SIGKILL":  # its loads were never recorded: the next plain run does them
            nxt = run_process(*CACHE_LOAD, env=env)
            assert nxt.returncode == 0, nxt.stdout[-2000:] + nxt.stderr
            assert {s for s, _ in _statuses(json_document(nxt.stdout)).values()} == {"succeeded"}
        _check_tables(engine)
        last = run_process(*CACHE_LOAD, env=env)
        assert last.returncode == 0, last.stdout[-2000:] + last.stderr
        assert {s for s, _ in _statuses(json_document(last.stdout)).values()} == {"unchanged"}
    finally:
        engine.dispose()


class _Done:
    """A finished process, for wait_until's liveness check."""

    returncode = 0

    def poll(self) -> None:
        return None


HOLDERS = (
    "SELECT DISTINCT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


def test_a_holder_whose_lock_connection_is_terminated_loads_and_records_nothing_more(
    pg_url: str, tmp_path: Path
) -> None:
    env = process_env(pg_url)
    for args in (
        ["catalog", "load", str(write_catalog(tmp_path / "c.yaml"))],
        [*SYNC, FIRST],
    ):
        done = run_process(*args, env=env)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    with load_blocked_on_its_tables(pg_url, env, *SYNC, NEXT) as (proc, locker, watcher, err):
        pids = [r[0] for r in watcher.execute(HOLDERS).fetchall()]
        assert len(pids) == 1, pids  # the holder's lock connection
        watcher.execute("SELECT pg_terminate_backend(%s)", (pids[0],))
        gone = lambda: not watcher.execute(ADVISORY).fetchone()[0]  # type: ignore[index]  # noqa: E731
        wait_until(gone, "the terminated lock connection gone", proc)
        locker.rollback()  # the table being loaded when the lock went is loaded; then it stops
        out = proc.communicate(timeout=120)[0]
        assert "Traceback" not in "".join(err)
    document = json_document(out)
    assert proc.returncode == 1, out[-2000:] + "".join(err)  # partial: its loads failed
    mine = _statuses(document)
    failed = [c for c, (s, _) in mine.items() if s == "failed"]
    assert len(failed) == 1 and {s for s, _ in mine.values()} == {"failed", "skipped"}, mine
    engine = open_engine(pg_url)
    try:
        with engine.connect() as conn:
            summary = conn.execute(
                select(t.runs.c.summary).where(t.runs.c.run_id == document["run_id"])
            ).scalar_one()
            records = {r.metric_id: r for r in conn.execute(select(t.cache_loads))}
            versions = {r.metric_id: r.version for r in conn.execute(select(t.series_versions))}
        assert summary["cache"] == {"failed": 1, "skipped": len(METRICS) - 1}, summary
        metric = failed[0].split("::")[1]
        assert records[metric].status == "failed" and "lost" in (records[metric].error or "")
        others = [m for m in METRICS if m != metric]  # still their last run's load: stale
        assert all(records[m].data_version != versions[m] for m in others)

        nxt = run_process(*CACHE_LOAD, env=env)  # the next plain run loads all four
        assert nxt.returncode == 0, nxt.stdout[-2000:] + nxt.stderr
        assert {s for s, _ in _statuses(json_document(nxt.stdout)).values()} == {"succeeded"}
        _check_tables(engine)
        last = run_process(*CACHE_LOAD, env=env)
        assert {s for s, _ in _statuses(json_document(last.stdout)).values()} == {"unchanged"}
    finally:
        engine.dispose()
