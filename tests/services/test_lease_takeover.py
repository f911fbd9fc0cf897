"""A sync stopped past its lease: another run takes its key over, and the first one, resumed,
leaves that key's record to it and says so.

Caused for real: a ``sync`` process (PostgreSQL, 5 s leases) is caught in a Cube request
(the Cube protocol server holds that one reply), then SIGSTOPped while none of its database
sessions is in a transaction, so its lease renewals stop; once its leases ran out a second
``sync`` runs to the end, and the first is SIGCONTinued.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cli_invoke import fulcrum_argv, process_env, run_process
from cube_server import FakeCube, Rows
from test_cli_sync_cube import cube_env, daily_data, stored, write_catalog

PERIOD = "2025-07-10"
SYNC = ("sync", "--grain", "day", "--period", PERIOD)
METRICS = tuple(f"m{i}" for i in range(6))


class Gate:
    """Holds the base query of the ``nth`` context asked, until released; records its measure."""

    def __init__(self, nth: int) -> None:
        self.nth, self.seen = nth, 0
        self.arrived, self.released = threading.Event(), threading.Event()
        self.measure = ""
        self._lock = threading.Lock()

    def data(self, query: dict[str, Any], claims: dict[str, Any]) -> Rows:
        with self._lock:
            if not query.get("dimensions"):  # a context's base query
                self.seen += 1
            caught = self.seen == self.nth and not self.arrived.is_set()
            if caught:
                self.measure = query["measures"][0]
                self.arrived.set()
        if caught:
            assert self.released.wait(120)
        return daily_data(query, claims)


def _scalar(admin: psycopg.Connection[Any], sql: str, *args: Any) -> Any:
    row = admin.execute(sql, args).fetchone()
    assert row is not None
    return row[0]


def _stopped(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"


def _stop_between_transactions(proc: subprocess.Popen[str], admin: Any, name: str) -> None:
    """SIGSTOP ``proc`` at a moment none of its sessions is in a transaction (a stopped
    transaction would hold its row locks against the next run)."""
    busy = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND state <> 'idle'"
    deadline = time.monotonic() + 60
    while True:
        proc.send_signal(signal.SIGSTOP)
        while not _stopped(proc.pid):
            time.sleep(0.001)
        if _scalar(admin, busy, name) == 0:
            return
        assert time.monotonic() < deadline, "its sessions never were all idle"
        proc.send_signal(signal.SIGCONT)
        time.sleep(0.001)


def _sync_processes(
    pg_url: str, tmp_path: Path, cube: str, workers: int
) -> tuple[dict[str, str], str]:
    """The environment of a sync on ``pg_url`` (its sessions named), the catalog loaded."""
    name = f"stopped_{uuid.uuid4().hex[:8]}"
    url = f"{pg_url}&application_name={name}"
    env = process_env(url) | cube_env(
        url,
        cube,
        FULCRUM_SYNC_LEASE_SECONDS="5",  # the shortest a lease may be
        FULCRUM_SYNC_CUBE_TIMEOUT_SECONDS="120",  # its held request is not timed out
        FULCRUM_SYNC_WORKERS=str(workers),
    )
    # Each metric in a cube of its own: a request per context, not one for the tenant.
    dimensions = [("region", "orders.region")]
    catalog = write_catalog(tmp_path / "catalog.yaml", dimensions, METRICS, own_cubes=True)
    loaded = run_process("catalog", "load", str(catalog), env=env)
    assert loaded.returncode == 0, loaded.stderr
    return env, name


@pytest.mark.slow
@pytest.mark.parametrize(
    "workers", [1, 2], ids=["1-worker-batched-writes", "2-workers-a-transaction-each"]
)
def test_a_run_that_lost_its_lease_leaves_the_key_to_its_new_holder_and_says_so(
    pg_url: str, tmp_path: Path, workers: int
) -> None:
    gate = Gate(nth=3)  # two contexts done, the third in flight
    fake = FakeCube(gate.data)
    admin = psycopg.connect(pg_url.replace("+psycopg", ""), autocommit=True)
    with fake.serve() as cube:
        env, name = _sync_processes(pg_url, tmp_path, cube, workers)
        first = subprocess.Popen(
            fulcrum_argv(*SYNC),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert gate.arrived.wait(60), first.communicate()  # held mid-context
            _stop_between_transactions(first, admin, name)
            held = "SELECT run_key FROM run_items WHERE status = 'running'"
            claimed = {r[0] for r in admin.execute(held)}  # in flight, in its batch, or ahead
            gate.released.set()  # the reply waits in its socket
            live = "SELECT count(*) FROM run_items WHERE lease_expires_at > now()"
            while _scalar(admin, live) > 0:  # its leases run out (the database's clock)
                time.sleep(0.05)
            second = run_process(*SYNC, "--json", env=env)
        finally:
            first.send_signal(signal.SIGCONT)
            gate.released.set()
        out, err = first.communicate(timeout=120)
    assert second.returncode == 0, second.stderr
    assert first.returncode == 0, err

    metric = gate.measure.split(".")[0]  # the context caught in flight
    key = f"sync:day:{PERIOD}:acme::{metric}"
    lines = [json.loads(x) for x in out.splitlines() if x.startswith("{")]  # its JSON logs
    warned = [x for x in lines if x.get("level") == "warning" and "taken over" in x["event"]]
    # The keys it had not recorded yet: the context in flight, and those of its write batch
    # (stored, with their keys, after the third); the keys it claimed ahead it skips.
    assert key in claimed and key in {x["run_key"] for x in warned}, lines
    assert {x["run_key"] for x in warned} <= claimed
    assert len(warned) == len({x["run_key"] for x in warned})
    keys = {
        r[0]: r[1:]
        for r in admin.execute("SELECT run_key, status, attempts, run_id FROM run_items")
    }
    admin.close()
    assert {status for status, _, _ in keys.values()} == {"succeeded"}  # none left running
    # Its new holder did them again, and recorded them; every other key was done once.
    assert {k for k, (_, attempts, _) in keys.items() if attempts == 2} == claimed
    assert {attempts for k, (_, attempts, _) in keys.items() if k not in claimed} == {1}
    second_run = json.loads(second.stdout)["run_id"]
    assert {keys[k][2] for k in claimed} == {second_run}

    clean = f"sqlite:///{tmp_path / 'clean.db'}"
    with FakeCube(daily_data).serve() as cube:
        ref = process_env(clean) | cube_env(clean, cube)
        loaded = run_process("catalog", "load", str(tmp_path / "catalog.yaml"), env=ref)
        assert loaded.returncode == 0, loaded.stderr
        assert run_process(*SYNC, env=ref).returncode == 0
        assert stored(pg_url) == stored(clean)
        again = run_process(*SYNC, "--json", env=env | {"FULCRUM_SYNC_CUBE_API_URL": cube})
    assert again.returncode == 0, again.stderr
    assert {c["status"] for c in json.loads(again.stdout)["contexts"]} == {"skipped"}
