"""What services need from the outside world: settings, the state database, source and sink."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported lazily: `fulcrum-sync --help` must start fast
    from sqlalchemy import Engine

    from fulcrum_sync.config import Settings
    from fulcrum_sync.patterns.registry import PatternSpec
    from fulcrum_sync.sinks.base import CacheSink
    from fulcrum_sync.sinks.destinations import CacheDestinations
    from fulcrum_sync.sources.base import Source


@dataclass(slots=True)
class Deps:
    """Settings plus lazily built engine and source; tests inject their own.

    :param settings: settings; built from the environment when None.
    :param source: a source to use instead of the one the settings name.
    :param engine: an engine to use instead of opening ``settings.database_url``.
    :param sink: a cache sink to use, for every tenant, instead of the ones ``--target``,
        the settings and the tenants' ``cache:`` blocks name.
    :param snowflake_connect: builds a Snowflake DB-API connection from keyword arguments
        (default ``snowflake.connector.connect``; tests pass fakesnow's).
    :param patterns: pattern specs that replace the registered ones of the same name.
    :param stop: set by SIGTERM/Ctrl-C (``stop_on_sigterm``) and only by them: the source's
        waits wake on it and send nothing more.
    """

    settings: Settings | None = None
    source: Source | None = None
    engine: Engine | None = None
    sink: CacheSink | None = None
    patterns: dict[str, PatternSpec] | None = None  # replace registered patterns (tests)
    snowflake_connect: Callable[..., Any] | None = None
    log_format: str | None = None
    verbose: bool = False
    stop: threading.Event = field(default_factory=threading.Event)
    _owns_engine: bool = False
    _owns_source: bool = False

    def get_settings(self) -> Settings:
        """The settings; built from the environment on first use, where an unknown
        ``FULCRUM_SYNC_SOURCE`` is refused (InputError naming the registered sources)."""
        if self.settings is None:
            from fulcrum_sync.config import load_settings
            from fulcrum_sync.sources.registry import source_entry

            settings = load_settings()
            source_entry(settings.source)
            self.settings = settings
        return self.settings

    def check_database_choice(self) -> None:
        """Refuse the default SQLite file for a source that needs an account (InputError)."""
        from fulcrum_sync.config import check_database_choice
        from fulcrum_sync.sources.registry import source_entry

        settings = self.get_settings()
        check_database_choice(settings, self_contained=source_entry(settings.source).self_contained)

    def get_engine(self, workers: int = 1, *, pooled: bool = False, migrate: bool = True) -> Engine:
        """Return the state database engine (schema created or migrated on first use).

        Raises InputError when a non-demo source would use the default SQLite file.

        :param pooled: keep connections open between transactions (jobs doing many).
        :param migrate: create or migrate the schema; ``status`` reads what is there only.
        """
        if self.engine is None:
            from fulcrum_sync.store.engine import open_engine

            self.check_database_choice()
            settings = self.get_settings()
            url = settings.database_url.get_secret_value()
            limits = settings.database_limits
            self.engine = open_engine(
                url, workers=workers, pooled=pooled, limits=limits, migrate=migrate
            )
            self._owns_engine = True
        return self.engine

    def get_source(self, *, long_run: bool = False) -> Source:
        """Return the semantic source the settings name (one per process).

        :param long_run: a backfill: while the source is down, wait for its breaker's trial.
        """
        if self.source is None:
            from fulcrum_sync.sources import build_source

            self.source = build_source(
                self.get_settings(),
                long_run=long_run,
                stop=self.stop,
                connections=self._tenant_connections,
            )
            self._owns_source = True
        return self.source

    def default_endpoint(self) -> str | None:
        """How errors name the settings' source endpoint (``Cube at http://cube:4000``), or
        None for a self-contained source (the demo) or an unset URL."""
        from fulcrum_sync.sources.cube_http import cube_label
        from fulcrum_sync.sources.registry import source_entry

        settings = self.get_settings()
        if source_entry(settings.source).self_contained or not settings.cube.api_url:
            return None
        return cube_label(settings.cube.api_url)

    def _tenant_connections(self) -> dict[str, Any]:
        """Each catalog tenant's own ``cube:`` block (None: the settings' Cube)."""
        from fulcrum_sync.store.catalog import read_catalog

        catalog = read_catalog(self.get_engine())
        return {t.identifier: t.cube for t in catalog.tenants}

    def get_sink(self, target: str | None = None) -> CacheSink:
        """Return the cache sink for ``target`` (default: the settings' cache target).

        Raises InputError for an unknown target or unusable Snowflake settings.
        """
        if self.sink is None:
            from fulcrum_sync.sinks import build_sink

            name = (target or self.get_settings().cache_target).strip().lower()
            engine = self.get_engine(pooled=True)
            self.sink = build_sink(name, self.get_settings(), engine)
        return self.sink

    def get_sinks(self, target: str | None = None) -> CacheDestinations:
        """Return each tenant's cache sink for ``target`` (default: the settings' target).

        With ``snowflake``, a tenant's ``cache:`` block names its own destination; the others
        use the settings. An injected ``sink`` serves every tenant. Raises InputError for an
        unknown target; a tenant's unusable destination is its own InputError, raised when
        its sink is asked for.
        """
        from fulcrum_sync.sinks.destinations import CacheDestinations, build_destinations

        if self.sink is not None:
            return CacheDestinations.single(self.sink)
        name = (target or self.get_settings().cache_target).strip().lower()
        engine = self.get_engine(pooled=True)
        return build_destinations(name, self.get_settings(), engine, self.snowflake_connect)

    def close(self) -> None:
        """Dispose of what this object built (not what was injected)."""
        if self._owns_engine and self.engine is not None:
            self.engine.dispose()
            self.engine = None
        if self._owns_source and self.source is not None:
            self.source.close()
            self.source = None
        self._owns_engine = self._owns_source = False
