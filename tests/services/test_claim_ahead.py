"""Keys claimed a batch ahead of their work (issue 26, services/jobs/claim_ahead.py): a stopped
run gives back the ones it did not start, a killed process's are taken over at once on its
host, and every key is done once."""

from __future__ import annotations

import socket
import subprocess
import sys
from datetime import date

import pytest
from sqlalchemy import Engine, select, update

from fulcrum_sync.services.jobs import claim_ahead
from fulcrum_sync.services.jobs.runner import KeyedWork, Outcome, RunContext, run_keyed
from fulcrum_sync.store import runs
from fulcrum_sync.store import tables as t

DAY = date(2025, 9, 30)
ITEMS = [
    runs.RunItem(f"sync:day:{DAY}:t{i}::m", "sync", "day", DAY, f"t{i}", "m") for i in range(6)
]


def keys(engine: Engine) -> dict[str, tuple[str, int]]:
    c = t.run_items.c
    with engine.connect() as conn:
        rows = conn.execute(select(c.run_key, c.status, c.attempts)).all()
    return {r.run_key: (r.status, r.attempts) for r in rows}


def run(engine: Engine, stop_after: int | None = None) -> list[int]:
    """One run over ITEMS; with ``stop_after``, SIGTERM's stop once that many are done."""
    rc = RunContext.start(engine, "sync", {"test": 1}, lease_seconds=600)
    done: list[int] = []

    def work(i: int) -> int:
        done.append(i)
        if stop_after is not None and len(done) == stop_after:
            rc.stop.set()
        return i

    with rc.recording(lambda: ("interrupted" if rc.stop.is_set() else "succeeded", {})):
        run_keyed(
            rc,
            [KeyedWork(item, i) for i, item in enumerate(ITEMS)],
            work,
            lambda _: Outcome(True),
            lambda _w, _c: -1,
        )
    return done


@pytest.fixture(autouse=True)
def claim_everything_ahead(monkeypatch: pytest.MonkeyPatch) -> None:
    """After the first key, one batch claims all the others (whatever the machine's pace)."""
    monkeypatch.setattr(claim_ahead, "AHEAD_SECONDS", 3600.0)


def test_a_stopped_run_releases_the_keys_it_claimed_ahead(engine: Engine) -> None:
    assert run(engine, stop_after=2) == [0, 1]
    after = keys(engine)
    assert [after[i.run_key][0] for i in ITEMS] == ["succeeded"] * 2 + ["released"] * 4
    assert run(engine) == [2, 3, 4, 5]  # the next run does the rest, each once
    assert {s for s, _ in keys(engine).values()} == {"succeeded"}
    assert [keys(engine)[i.run_key][1] for i in ITEMS] == [1, 1, 2, 2, 2, 2]


def test_keys_a_killed_process_claimed_ahead_are_taken_at_once(engine: Engine) -> None:
    runs.ensure_items(engine, ITEMS)
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    dead = f"{socket.gethostname()}:{gone}:deadbeef"  # its process has exited: SIGKILL
    c = t.run_items.c
    with engine.begin() as conn:  # what its batch claim left: running, a long lease
        conn.execute(
            update(t.run_items)
            .where(c.run_key.in_([i.run_key for i in ITEMS[1:]]))
            .values(
                status="running",
                lease_owner=dead,
                lease_expires_at=runs.now_utc().replace(year=2099),
            )
        )
    assert run(engine) == list(range(6))
    assert {s for s, _ in keys(engine).values()} == {"succeeded"}
