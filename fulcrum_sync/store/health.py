"""What ``doctor`` asks the state database: its server, version and clock."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, text

from fulcrum_sync.store.engine import translate_errors


def server_version(engine: Engine) -> str:
    """Return the server's name and version, e.g. ``PostgreSQL 15.4`` or ``SQLite 3.40.1``."""
    with translate_errors(engine, "connect to"), engine.connect() as conn:
        info = conn.dialect.server_version_info or ()
    name = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}.get(engine.dialect.name)
    return f"{name or engine.dialect.name} {'.'.join(str(p) for p in info)}".strip()


def server_now(engine: Engine) -> datetime | None:
    """Return the database server's clock (UTC), or None when it has none of its own (SQLite)."""
    if engine.dialect.name != "postgresql":
        return None
    with translate_errors(engine, "read the clock of"), engine.connect() as conn:
        value = conn.execute(text("SELECT now()")).scalar_one()
    return value.astimezone(UTC) if isinstance(value, datetime) else None
