"""A network cut between a running sync and its PostgreSQL state database, caused for real.

A private server runs in a network namespace of its own, reached over a veth pair; taking
the far end's link down drops every packet both ways, with no reset: what a cut cable, a
dead switch or a failed-over address does. Without keepalives a session waiting on such a
socket waits forever, deaf to SIGTERM (seen: a sync still hung 105 s into a cut). With
``FULCRUM_SYNC_DATABASE_DEAD_AFTER_SECONDS`` the lost connection is noticed, the run waits
for the database as for a restart, and goes on once the network is back; SIGTERM ends it.

Needs root (``ip netns``) and PostgreSQL's server binaries; skipped elsewhere.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from cli_invoke import Cli, fulcrum_argv, json_lines, process_env
from test_database_outages import SYNC, _as_owner, _binary, _prepared, _runs, _wait_for_keys
from test_truthful_runs import digest

pytestmark = pytest.mark.slow

DEAD_AFTER = "3"  # seconds: short, so the test waits little; 30 by default


@dataclass
class NetnsServer:
    """A PostgreSQL server behind a veth pair whose far end can be cut."""

    namespace: str
    far: str  # the link inside the namespace
    address: str
    datadir: str
    pg_ctl: str

    def ns(self, *command: str) -> list[str]:
        return ["ip", "netns", "exec", self.namespace, *command]

    def cut(self) -> None:
        subprocess.run(self.ns("ip", "link", "set", self.far, "down"), check=True)

    def restore(self) -> None:
        subprocess.run(self.ns("ip", "link", "set", self.far, "up"), check=True)

    def new_database(self) -> str:
        name = f"cut_{uuid.uuid4().hex[:8]}"
        admin = f"postgresql://postgres@{self.address}:5432/postgres"
        with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@{self.address}:5432/{name}"


def _run(*command: str) -> None:
    done = subprocess.run(list(command), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{command}: {done.stderr}"


@pytest.fixture(scope="module")
def netns_pg() -> Iterator[NetnsServer]:
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if os.geteuid() != 0 or shutil.which("ip") is None or initdb is None or pg_ctl is None:
        pytest.skip("needs root, ip netns and PostgreSQL's server binaries")
    tag = os.getpid() % 100_000
    namespace, near, far = f"fcut{tag}", f"fc{tag}a", f"fc{tag}b"
    subnet = f"10.213.{tag % 250}"
    probe = subprocess.run(["ip", "netns", "add", namespace], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"no network namespaces here: {probe.stderr.strip()}")
    datadir = tempfile.mkdtemp(prefix="fulcrum_cut_", dir="/tmp")
    shutil.chown(datadir, "postgres", "postgres")
    server = NetnsServer(namespace, far, f"{subnet}.2", datadir, pg_ctl)
    try:
        _run("ip", "link", "add", near, "type", "veth", "peer", "name", far)
        _run("ip", "link", "set", far, "netns", namespace)
        _run("ip", "addr", "add", f"{subnet}.1/24", "dev", near)
        _run("ip", "link", "set", near, "up")
        _run(*server.ns("ip", "addr", "add", f"{subnet}.2/24", "dev", far))
        _run(*server.ns("ip", "link", "set", far, "up"))
        _run(*_as_owner([initdb, "-D", datadir, "-U", "postgres", "-A", "trust"]))
        with open(f"{datadir}/pg_hba.conf", "a") as hba:
            hba.write(f"host all all {subnet}.0/24 trust\n")
        options = f"-p 5432 -k {datadir} -c listen_addresses={server.address} -c fsync=off"
        start = [pg_ctl, "-D", datadir, "-w", "-o", options, "-l", f"{datadir}/log", "start"]
        _run(*server.ns(*_as_owner(start)))
        yield server
    finally:
        stop = [pg_ctl, "-D", datadir, "-m", "immediate", "stop"]
        subprocess.run(server.ns(*_as_owner(stop)), capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", near], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True, check=False)
        shutil.rmtree(datadir, ignore_errors=True)


@dataclass
class Lines:
    """A process's stdout, read line by line as it comes (a thread drains it)."""

    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def wait_for(self, found: Callable[[str], bool], what: str, bound: float = 60) -> None:
        deadline = time.monotonic() + bound
        while not any(found(line) for line in list(self.lines)):
            if self.proc.poll() is not None:
                pytest.fail(f"the sync ended ({self.proc.returncode}) before {what}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {what} within {bound} s: the sync hangs on the cut")
            time.sleep(0.05)


def _start(url: str, tmp_path: Path) -> tuple[subprocess.Popen[str], Lines]:
    env = process_env(url) | {
        "FULCRUM_SYNC_DATABASE_DEAD_AFTER_SECONDS": DEAD_AFTER,
        "FULCRUM_SYNC_DATABASE_RETRY_SECONDS": "120",
    }
    proc = subprocess.Popen(
        fulcrum_argv(*SYNC, "--workers", "2"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    return proc, Lines(proc)


def _cut_mid_sync(
    server: NetnsServer, tmp_path: Path
) -> tuple[str, dict[str, tuple[int, str]], subprocess.Popen[str], Lines]:
    """A database prepared (and a clean run's digest), a sync started on it, the network cut
    once the sync stored 3 contexts; the caller restores the network."""
    url = server.new_database()
    clean = digest(_prepared(url, tmp_path, metrics=24))
    proc, out = _start(url, tmp_path)
    _wait_for_keys(url, proc, 3)
    server.cut()
    return url, clean, proc, out


def _unreachable(line: str) -> bool:
    return '"level":"warning"' in line and "the state database is unreachable" in line


def test_a_network_cut_mid_sync_is_noticed_waited_out_and_costs_nothing(
    netns_pg: NetnsServer, tmp_path: Path
) -> None:
    url, clean, proc, out = _cut_mid_sync(netns_pg, tmp_path)
    try:
        out.wait_for(_unreachable, "warning that the database is unreachable")
    finally:
        netns_pg.restore()
        if proc.poll() is None and not any(_unreachable(line) for line in out.lines):
            proc.kill()  # the old behaviour: hung on the cut socket
    assert proc.wait(timeout=300) == 0, proc.stderr.read() if proc.stderr else ""
    lines = json_lines("".join(out.lines))
    finished = lines[-1]
    assert finished["event"] == "sync finished" and finished["outcome"] == "succeeded", finished
    assert finished["counts"]["succeeded"] == 24, finished
    assert any("is back after" in e["event"] for e in lines if e["level"] == "info")
    assert digest(url) == clean


def test_sigterm_during_a_network_cut_ends_the_run_and_the_next_run_heals(
    netns_pg: NetnsServer, tmp_path: Path
) -> None:
    url, clean, proc, out = _cut_mid_sync(netns_pg, tmp_path)
    try:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=90)  # the dead-after time, the stop's grace, a margin
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail("SIGTERM did not end a sync waiting on a cut network")
    finally:
        netns_pg.restore()
    assert code == 143, "".join(out.lines)[-2000:]
    run_id = json_lines(out.lines[0])[0]["run_id"]
    again = Cli.on(url)(*SYNC)
    assert again.exit_code == 0, again.output
    assert _runs(url)[run_id]["outcome"] in ("interrupted", "abandoned")
    assert digest(url) == clean
