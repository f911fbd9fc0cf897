"""How errors name the state database: ``PostgreSQL at host:port/db`` or ``SQLite at path``,
never with credentials (the prefix ``domain.errors.endpoint_of`` reads back)."""

from __future__ import annotations

from sqlalchemy.engine import URL


def database_endpoint(url: URL) -> str:
    """``PostgreSQL at db:5432/fulcrum`` (no user, no password, no query) or ``SQLite at f.db``."""
    if url.get_backend_name() == "sqlite":
        return f"SQLite at {url.database or ':memory:'}"
    name = "PostgreSQL" if url.get_backend_name() == "postgresql" else url.get_backend_name()
    host = url.host or "localhost"
    port = f":{url.port}" if url.port else ""
    return f"{name} at {host}{port}/{url.database or ''}"
