"""How errors name the state database: ``PostgreSQL at host:port/db`` or ``SQLite at path``,
never with credentials (the prefix ``domain.errors.endpoint_of`` reads back)."""

from __future__ import annotations

from sqlalchemy.engine import URL


def database_address(url: URL) -> str:
    """``db:5432/fulcrum`` (no user, no password, no query), or a SQLite file's path."""
    if url.get_backend_name() == "sqlite":
        return url.database or ":memory:"
    port = f":{url.port}" if url.port else ""
    return f"{url.host or 'localhost'}{port}/{url.database or ''}"


def database_endpoint(url: URL) -> str:
    """``PostgreSQL at db:5432/fulcrum`` or ``SQLite at f.db``: how a message names it."""
    backend = url.get_backend_name()
    name = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}.get(backend, backend)
    return f"{name} at {database_address(url)}"
