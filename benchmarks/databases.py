"""The benchmarks' databases: a PostgreSQL database (or schema) per benchmark, SQLite files."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PG_ADMIN_ENV = "FULCRUM_SYNC_BENCH_PG"
DEFAULT_PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def pg_admin_url() -> str:
    return os.environ.get(PG_ADMIN_ENV, DEFAULT_PG_ADMIN)


def pg_version(admin_url: str) -> str | None:
    """Return the server's version string, or None when it is unreachable."""
    try:
        import psycopg

        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            return str(row[0]) if row else None
    except Exception:
        return None


@contextmanager
def pg_database(admin_url: str) -> Iterator[str]:
    """Create a database for one benchmark; yield its SQLAlchemy URL; drop it afterwards."""
    import psycopg

    name = f"fulcrum_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)
    finally:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_schema(database_url: str) -> str:
    """Create a fresh schema in a benchmark database; return a URL that works inside it."""
    import psycopg

    schema = f"s_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(database_url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return f"{database_url}?options=-csearch_path%3D{schema}"


def sqlite_url(directory: Path, name: str = "state.db") -> str:
    return f"sqlite:///{directory / name}"
