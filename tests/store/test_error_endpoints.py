"""Every store and sink error names its endpoint, without credentials, and status can read
it back from a stored message (issue 23, item 11)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from fulcrum_sync.domain import StoreError, endpoint_of
from fulcrum_sync.store.engine import open_engine


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_postgresql_is_named_without_its_password() -> None:
    port = _closed_port()
    url = f"postgresql+psycopg://app:Sekr1tPw@127.0.0.1:{port}/fulcrum"
    with pytest.raises(StoreError) as info:
        open_engine(url)
    text = str(info.value)
    assert text.startswith(f"PostgreSQL at 127.0.0.1:{port}/fulcrum: cannot ")
    assert info.value.endpoint == f"127.0.0.1:{port}/fulcrum"
    assert "Sekr1tPw" not in text and "app" not in text.split(":", 1)[0]
    assert endpoint_of(f"acme::orders (day): {text}") == f"PostgreSQL at 127.0.0.1:{port}/fulcrum"


@pytest.mark.parametrize(
    ("message", "endpoint"),
    [
        ("Cube at http://cube:4000/cubejs-api: HTTP 503", "Cube at http://cube:4000/cubejs-api"),
        ("acme::m (day): Cube at http://cube:4000: timed out", "Cube at http://cube:4000"),
        ("Snowflake account xy123: cannot connect as LOADER: 250001", "Snowflake account xy123"),
        ("SQLite at /var/lib/fs.db: cannot store", "SQLite at /var/lib/fs.db"),
        ("Cube request failed after 2 attempts", None),
        (None, None),
    ],
)
def test_endpoint_of(message: str | None, endpoint: str | None) -> None:
    assert endpoint_of(message) == endpoint


def test_run_records_never_hold_a_url_password(tmp_path: Path) -> None:
    from sqlalchemy import select

    from fulcrum_sync.store import runs
    from fulcrum_sync.store import tables as t

    engine = open_engine(f"sqlite:///{tmp_path / 's.db'}")
    run_id = runs.start_run(engine, "sync", {"grain": "day"})
    leaked = "Cube at http://fs:Sekr1tPw@cube:4000 down"
    runs.finish_run(engine, run_id, "failed", {"halted": leaked, "error": leaked})
    with engine.connect() as conn:
        summary = conn.execute(select(t.runs.c.summary)).scalar_one()
    assert "Sekr1tPw" not in str(summary) and "cube:4000" in summary["halted"]
    engine.dispose()
