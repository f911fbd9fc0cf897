"""Create or migrate the state database's schema."""

from __future__ import annotations

from sqlalchemy import Engine

from fulcrum_sync.config import Settings
from fulcrum_sync.domain import RevisionResult, UpgradeResult


def upgrade(settings: Settings, engine: Engine | None = None) -> UpgradeResult:
    """Migrate the database the settings name (or ``engine``) to the newest revision.

    Raises InputError for an unusable URL and StoreError when the database is unreachable.
    """
    from fulcrum_sync.store.engine import current_revision, open_engine
    from fulcrum_sync.store.engine import upgrade as upgrade_schema

    own = engine is None
    engine = engine or open_engine(
        settings.database_url.get_secret_value(), migrate=False, limits=settings.database_limits
    )
    try:
        before = current_revision(engine)
        after = upgrade_schema(engine)
    finally:
        if own:
            engine.dispose()
    return UpgradeResult(settings.masked_database_url, before, after)


def current(settings: Settings, engine: Engine | None = None) -> RevisionResult:
    """Return the schema revision of the database the settings name (or ``engine``).

    Changes nothing: an empty database stays empty. Raises InputError for an unusable URL and
    StoreError when the database is unreachable.
    """
    from fulcrum_sync.store.engine import HEAD_REVISION, current_revision, open_engine

    own = engine is None
    engine = engine or open_engine(
        settings.database_url.get_secret_value(), migrate=False, limits=settings.database_limits
    )
    try:
        revision = current_revision(engine)
    finally:
        if own:
            engine.dispose()
    return RevisionResult(settings.masked_database_url, revision, HEAD_REVISION)
