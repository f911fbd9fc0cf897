"""Names a shell completes from the state database: tenants, metrics, contexts, commands.

Completion runs on every <TAB>: it never creates or migrates a database, never logs, and
answers nothing (an empty list) when the database is not there or not reachable.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url

from fulcrum_sync.config import Settings


@dataclass(frozen=True, slots=True)
class StoredNames:
    """What the catalog in the state database names (empty when it cannot be read)."""

    tenants: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    contexts: list[str] = field(default_factory=list)  # tenant::metric
    commands: list[str] = field(default_factory=list)  # with a run recorded


def stored_names(settings: Settings) -> StoredNames:
    """Read the active contexts' names; nothing at all when the database is unreachable."""
    from fulcrum_sync.store.engine import open_engine
    from fulcrum_sync.store.reports import active_contexts, run_commands

    url = settings.database_url.get_secret_value()
    if not _may_exist(url):
        return StoredNames()
    with contextlib.suppress(Exception):
        engine = open_engine(_quick(url), migrate=False)
        try:
            rows = active_contexts(engine)
            commands = run_commands(engine)
        finally:
            engine.dispose()
        return StoredNames(
            tenants=sorted({r["tenant"] for r in rows}),
            metrics=sorted({r["metric_id"] for r in rows}),
            contexts=sorted({f"{r['tenant']}::{r['metric_id']}" for r in rows}),
            commands=commands,
        )
    return StoredNames()


CONNECT_TIMEOUT = 2  # seconds a <TAB> waits for an unreachable PostgreSQL server


def _quick(url: str) -> str:
    """``url`` with a short connect timeout for PostgreSQL (a shell waits on completion)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql" or "connect_timeout" in parsed.query:
        return url
    quick = parsed.update_query_dict({"connect_timeout": str(CONNECT_TIMEOUT)})
    return quick.render_as_string(hide_password=False)


def _may_exist(url: str) -> bool:
    """False for a SQLite file that is not there (opening it would create it)."""
    try:
        parsed = make_url(url)
    except Exception:
        return False
    if parsed.get_backend_name() != "sqlite":
        return True
    return bool(parsed.database) and Path(parsed.database or "").is_file()
