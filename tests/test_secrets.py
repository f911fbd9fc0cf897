"""The Cube secret, the JWTs it signs and the database password never leak.

Every command an operator runs against a Cube source (``sync`` on success and on 403, 400
and an unreachable server, ``status``, ``runs``, ``discover --check-source``, ``db upgrade``),
with ``--verbose`` and ``--log-format json`` (and rich), is checked: stdout, stderr, every
log record as it was emitted (before any handler's redaction), a real ``python -m
fulcrum_sync`` process's output, and every row stored in the state database.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import re
import socket
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import jwt
import pytest
import yaml
from cli_invoke import fulcrum_argv
from cube_server import FakeCube, Reply, Rows, series_rows
from sqlalchemy import select
from sqlalchemy.engine import make_url
from typer.testing import CliRunner, Result

from fulcrum_sync.cli import app
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import open_engine

runner = CliRunner()

CUBE_SECRET = "cUbE-s3cret-DO-NOT-LEAK-4f1d9a0e7b2c"
DB_PASSWORD = "hunter2secret"
MEASURE = "orders.total_amount"
TIME = "orders.created_at"
CUBES = {"orders": {"measures": [MEASURE], "dimensions": [TIME, "orders.region"]}}
ROOT = ("--verbose", "--log-format", "json")
SYNC = ("sync", "--grain", "day", "--period", "2025-07-03", "--no-patterns")

# Three base64url segments joined by dots: what a JWT looks like on the wire.
_THREE_SEGMENTS = re.compile(r"[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
_JWT_HEADER = re.compile(r"eyJ[A-Za-z0-9_-]{8,}")  # base64url of '{"' ...


# --------------------------------------------------------------------------- the check


def forbidden_values(*extra: str) -> list[str]:
    """The secret and the password, also as they would look URL- or base64-encoded."""
    values = [CUBE_SECRET, DB_PASSWORD, *extra]
    encoded = [quote(v, safe="") for v in values] + [quote_plus(v) for v in values]
    b64 = [base64.b64encode(v.encode()).decode().rstrip("=") for v in values[:2]]
    b64url = [base64.urlsafe_b64encode(v.encode()).decode().rstrip("=") for v in values[:2]]
    return sorted(set(values + encoded + b64 + b64url))


def _is_jwt(candidate: str) -> bool:
    try:
        header = jwt.get_unverified_header(candidate)
    except jwt.PyJWTError:
        return False
    return isinstance(header, dict)


def assert_clean(
    text: str, where: str, tokens: Iterable[str] = (), extra: Iterable[str] = ()
) -> None:
    """Fail when ``text`` holds a secret, a token the client sent, or anything JWT-shaped."""
    for value in [*forbidden_values(*extra), *tokens]:
        assert value not in text, f"{where} leaks {value[:12]}...:\n{text}"
    for match in _THREE_SEGMENTS.finditer(text):
        assert not _is_jwt(match.group()), f"{where} leaks a JWT {match.group()[:20]}...:\n{text}"
    header = _JWT_HEADER.search(text)
    assert header is None, f"{where} holds a JWT-looking string {header.group()[:20]}:\n{text}"


class RawRecords(logging.Handler):
    """Keep every log record as it was emitted, before any handler's filter redacts it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is still text to check
            message = f"{record.msg!r} % {record.args!r}"
        fields = {k: v for k, v in vars(record).items() if k not in ("msg", "args")}
        text = f"{message} {fields!r}"
        if record.exc_info and record.exc_info[1] is not None:
            text += " " + logging.Formatter().formatException(record.exc_info)
        self.lines.append(text)


@pytest.fixture
def raw_logs(caplog: pytest.LogCaptureFixture) -> Iterator[RawRecords]:
    """Capture DEBUG and up from every logger (root handler, like caplog's)."""
    caplog.set_level(logging.DEBUG)
    handler = RawRecords()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


def stored_text(url: str) -> dict[str, str]:
    """Every row of every state table, as text, by table name."""
    engine = open_engine(url)
    try:
        with engine.connect() as conn:
            return {
                table.name: "\n".join(repr(dict(r._mapping)) for r in conn.execute(select(table)))
                for table in t.metadata.sorted_tables
            }
    finally:
        engine.dispose()


def stored_rows(url: str, table: Any) -> list[dict[str, Any]]:
    engine = open_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(table))]
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- fixtures


def with_password(url: str, password: str = DB_PASSWORD) -> str:
    """``url`` with a password (PostgreSQL here trusts local connections and ignores it)."""
    if not url.startswith("postgresql"):
        return url
    return make_url(url).set(password=password).render_as_string(hide_password=False)


@pytest.fixture
def state_url(db_url: str) -> str:
    """The test database; on PostgreSQL with ``hunter2secret`` in the URL."""
    url = with_password(db_url)
    if url.startswith("postgresql"):
        assert DB_PASSWORD in url
    return url


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def daily(query: dict[str, Any], claims: dict[str, Any]) -> Rows:
    start, end = (d[:10] for d in query["timeDimensions"][0]["dateRange"])
    member = (query.get("dimensions") or [None])[0]
    days = [f"2025-07-{n:02d}" for n in range(int(start[-2:]), int(end[-2:]) + 1)]
    slices = ["east", "west"] if member else [None]
    return series_rows(query, [(d, "10.00", s) for d in days for s in slices])


class EchoingCube(FakeCube):
    """A Cube behind a careless proxy: its errors quote the Authorization header they got."""

    def handle(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Reply:
        reply = super().handle(method, path, headers, raw)
        if reply.status >= 400 and isinstance(reply.json, dict):
            echoed = f"{reply.json.get('error')} (Authorization: {headers.get('authorization')})"
            return Reply(reply.status, {**reply.json, "error": echoed}, headers=reply.headers)
        return reply


@dataclass
class Scenario:
    """One way the Cube source can answer, and the exit codes that prove it was taken."""

    name: str
    sync_exit: int
    discover_exit: int
    dimensions: list[tuple[str, str]]
    fake: FakeCube | None = None
    expect_text: list[str] = field(default_factory=list)


SCENARIOS = ["ok", "forbidden", "bad_member", "unreachable"]


def make_scenario(name: str) -> Scenario:
    region = [("region", "orders.region")]
    if name == "ok":
        return Scenario(name, 0, 0, region, FakeCube(daily, cubes=CUBES, secret=CUBE_SECRET))
    if name == "forbidden":  # the server knows another secret: 403, the header echoed back
        fake = EchoingCube(daily, cubes=CUBES, secret="another-secret-the-server-expects-0123")
        return Scenario(name, 2, 2, region, fake, ["Invalid token", "FULCRUM_SYNC_CUBE_API_SECRET"])
    if name == "bad_member":  # 400 UserError, the header echoed back
        fake = EchoingCube(daily, cubes=CUBES, secret=CUBE_SECRET)
        dims = [*region, ("bogus", "orders.no_such_member")]
        return Scenario(name, 1, 1, dims, fake, ["not found for path 'orders.no_such_member'"])
    return Scenario(name, 3, 3, region, None, ["connection failed"])


def cube_env(state_url: str, api_url: str) -> dict[str, str]:
    return {
        "FULCRUM_SYNC_DATABASE_URL": state_url,
        "FULCRUM_SYNC_SOURCE": "cube",
        "FULCRUM_SYNC_CUBE_API_URL": api_url,
        "FULCRUM_SYNC_CUBE_API_SECRET": CUBE_SECRET,
        "FULCRUM_SYNC_CUBE_RETRIES": "1",
        "FULCRUM_SYNC_CUBE_TIMEOUT_SECONDS": "2",
        "FULCRUM_SYNC_WORKERS": "1",
    }


def write_catalog(path: Path, dimensions: list[tuple[str, str]]) -> Path:
    metric = {
        "metric_id": "revenue",
        "measure": MEASURE,
        "time_dimension": TIME,
        "dimensions": [{"dimension_id": d, "member": m} for d, m in dimensions],
        "grains": ["day"],
    }
    catalog = {"tenants": [{"tenant_id": 3, "identifier": "acme", "metrics": [metric]}]}
    path.write_text(yaml.safe_dump(catalog))
    return path


@contextlib.contextmanager
def cube_url(scenario: Scenario) -> Iterator[str]:
    """The fake's URL (served on 127.0.0.1), or a closed port for the unreachable case."""
    if scenario.fake is None:
        yield f"http://127.0.0.1:{closed_port()}"
        return
    with scenario.fake.serve() as url:
        yield url


def tokens_sent(scenario: Scenario) -> list[str]:
    """The JWTs the client signed and sent (what a leak would show)."""
    tokens = [r.token for r in scenario.fake.requests] if scenario.fake else []
    for token in tokens:
        assert _is_jwt(token)
    return tokens


# --------------------------------------------------------------------------- in-process


@pytest.mark.parametrize("name", SCENARIOS)
def test_no_secret_in_any_output_log_or_stored_row(
    name: str,
    state_url: str,
    tmp_path: Path,
    raw_logs: RawRecords,
    caplog: pytest.LogCaptureFixture,
) -> None:
    scenario = make_scenario(name)
    catalog = write_catalog(tmp_path / "catalog.yaml", scenario.dimensions)
    results: list[tuple[str, Result]] = []
    with cube_url(scenario) as url:

        def run(*args: str, expect: int, retries: str = "0") -> None:
            env = cube_env(state_url, url) | {"FULCRUM_SYNC_CUBE_RETRIES": retries}
            result = runner.invoke(app, list(args), env=env)
            results.append((" ".join(args), result))
            assert result.exit_code == expect, (args, result.output)

        run(*ROOT, "db", "upgrade", expect=0)
        run(*ROOT, "catalog", "load", str(catalog), expect=0)
        run(*ROOT, *SYNC, expect=scenario.sync_exit, retries="1")  # retries log warnings
        run(*ROOT, *SYNC, "--force", "--json", expect=scenario.sync_exit)
        run("--verbose", "--log-format", "rich", *SYNC, "--force", expect=scenario.sync_exit)
        run(*ROOT, "discover", "--check-source", expect=scenario.discover_exit)
        run("--verbose", "discover", "--check-source", "--json", expect=scenario.discover_exit)
        for command in (("status",), ("status", "--json")):  # 2025-07-03 is behind: exit 1
            run(*ROOT, *command, expect=1)
        for command in (("runs",), ("runs", "--json")):
            run(*ROOT, *command, expect=0)

    tokens = tokens_sent(scenario)
    if name == "forbidden":  # checked once per command, never retried, nothing more sent
        assert len(tokens) == 5
    elif scenario.fake is not None:
        assert len(tokens) >= 5  # the client really signed and sent JWTs (a multi per context)
    for what, result in results:
        assert_clean(result.stdout, f"stdout of `{what}`", tokens)
        assert_clean(result.stderr, f"stderr of `{what}`", tokens)
        assert "Traceback" not in result.output, what
    everything = "\n".join(r.output for _, r in results)
    for text in scenario.expect_text:  # the failure happened and was reported
        assert text in everything
    assert_clean(caplog.text, "caplog", tokens)
    assert raw_logs.lines  # --verbose logs did flow
    assert_clean("\n".join(raw_logs.lines), "log records", tokens)

    for table, text in stored_text(state_url).items():
        assert_clean(text, f"stored table {table}", tokens)
    runs = stored_rows(state_url, t.runs)
    assert [r["command"] for r in runs].count("sync") == 3
    assert all(isinstance(r["arguments"], dict) and r["arguments"] for r in runs)
    failed = [r for r in stored_rows(state_url, t.metric_sync_status) if r["status"] == "failed"]
    if scenario.sync_exit:
        assert failed and all(r["error"] for r in failed)
        assert any(text in r["error"] for r in failed for text in scenario.expect_text)
    else:
        assert not failed


# --------------------------------------------------------------------------- a real process


def run_process(
    args: Iterable[str], env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m fulcrum_sync`` with only our FULCRUM_SYNC_* settings."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("FULCRUM_SYNC_")}
    return subprocess.run(
        fulcrum_argv(*args),
        env=base | env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "log_format"), [("forbidden", "json"), ("bad_member", "rich"), ("unreachable", "json")]
)
def test_a_real_process_leaks_nothing_on_stdout_or_stderr(
    name: str, log_format: str, state_url: str, tmp_path: Path
) -> None:
    scenario = make_scenario(name)
    catalog = write_catalog(tmp_path / "catalog.yaml", scenario.dimensions)
    with cube_url(scenario) as url:
        env = cube_env(state_url, url)
        loaded = runner.invoke(app, ["catalog", "load", str(catalog)], env=env)
        assert loaded.exit_code == 0, loaded.output
        proc = run_process(["--verbose", "--log-format", log_format, *SYNC], env, tmp_path)
    tokens = tokens_sent(scenario)
    assert proc.returncode == scenario.sync_exit, proc.stderr
    assert_clean(proc.stdout, "stdout of python -m fulcrum_sync", tokens)
    assert_clean(proc.stderr, "stderr of python -m fulcrum_sync", tokens)
    assert "Traceback" not in proc.stderr
    if log_format == "json":  # JSON lines on stdout, the retry warnings among them
        events = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
        assert any(e.get("event") == "sync finished" for e in events)
    for text in scenario.expect_text:
        assert text in proc.stdout + proc.stderr


# --------------------------------------------------------------------------- the database URL


@pytest.mark.parametrize("password", [DB_PASSWORD, "p@ss:w/rd hunter2 %41"])
def test_database_password_is_masked_when_the_database_is_unreachable(
    password: str, tmp_path: Path, raw_logs: RawRecords
) -> None:
    secret = quote(password, safe="")
    url = f"postgresql+psycopg://postgres:{secret}@127.0.0.1:{closed_port()}/fulcrum"
    # No wait for the database to come back: it never will (a closed port).
    env = {**cube_env(url, "http://127.0.0.1:9"), "FULCRUM_SYNC_DATABASE_RETRY_SECONDS": "0"}
    commands = [
        (*ROOT, *SYNC),
        (*ROOT, *SYNC, "--json"),
        (*ROOT, "status"),
        (*ROOT, "runs", "--json"),
        (*ROOT, "db", "upgrade"),
        (*ROOT, "discover", "--check-source"),
    ]
    for args in commands:
        result = runner.invoke(app, list(args), env=env)
        assert result.exit_code == 3, (args, result.output)
        assert "PostgreSQL at 127.0.0.1:" in result.stderr  # the operator still sees which DB
        assert_clean(result.output, f"output of {args}", extra=[password])
        assert "Traceback" not in result.output
    assert_clean("\n".join(raw_logs.lines), "log records", extra=[password])

    proc = run_process([*ROOT, *SYNC], env, tmp_path)
    assert proc.returncode == 3, proc.stderr
    assert_clean(proc.stdout + proc.stderr, "python -m fulcrum_sync", extra=[password])


def test_unusable_database_url_is_masked(tmp_path: Path) -> None:
    url = f"postgresql+nosuchdriver://postgres:{DB_PASSWORD}@127.0.0.1:5432/fulcrum"
    result = runner.invoke(app, [*ROOT, *SYNC], env=cube_env(url, "http://127.0.0.1:9"))
    assert result.exit_code == 2, result.output
    assert "postgres:***@127.0.0.1" in result.stderr
    assert_clean(result.output, "unusable URL")


def test_reachable_database_with_a_password_is_masked_in_db_upgrade(state_url: str) -> None:
    result = runner.invoke(app, [*ROOT, "db", "upgrade"], env=cube_env(state_url, "http://x"))
    assert result.exit_code == 0, result.output
    assert "Database " in result.stdout
    if state_url.startswith("postgresql"):
        assert "postgres:***@" in result.stdout
    assert_clean(result.output, "db upgrade")
