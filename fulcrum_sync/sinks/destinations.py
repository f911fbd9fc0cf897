"""Which cache target each tenant's tables go to: its own ``cache:`` destination, or the
settings' one.

With the ``snowflake`` target a tenant with a ``cache:`` block loads into its own account,
database and schema; a tenant without one into ``FULCRUM_SYNC_SNOWFLAKE_*``. Tenants whose
destinations share account, user, role and warehouse share one connection (a
:class:`SnowflakeLink`), opened once per run. The ``local`` target puts every tenant's
tables in the state database. A tenant whose destination cannot be built (a variable or
file that is missing, a key that does not load) gets the InputError naming the fix from
:meth:`CacheDestinations.sink_for`; the other tenants are not affected.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from fulcrum_sync.domain import InputError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from fulcrum_sync.catalog import TenantDef
    from fulcrum_sync.config import Settings
    from fulcrum_sync.sinks.base import CacheSink
    from fulcrum_sync.sinks.snowflake import SnowflakeConfig, SnowflakeLink


class CacheDestinations:
    """The sink of each tenant, built on first ask and kept for the run.

    :param target: ``local`` or ``snowflake`` (what every sink here is).
    :param default: builds the sink of tenants without a ``cache:`` block (may raise
        InputError: the settings are unusable).
    :param own: builds the sink of a tenant's ``cache:`` block, or None when the target
        ignores the blocks (``local``).
    """

    def __init__(
        self,
        target: str,
        default: Callable[[], CacheSink],
        own: Callable[[TenantDef], CacheSink] | None = None,
    ) -> None:
        self.target = target
        self._default = default
        self._own = own
        self._sinks: dict[str, CacheSink | InputError] = {}

    @classmethod
    def single(cls, sink: CacheSink) -> CacheDestinations:
        """Every tenant's tables go to ``sink`` (an injected sink, or the local target)."""
        return cls(sink.target, lambda: sink)

    def sink_for(self, tenant: TenantDef) -> CacheSink:
        """Return the sink of ``tenant``; raise InputError (remembered) when it cannot be built."""
        key = tenant.identifier if self._own is not None and tenant.cache else ""
        if not key:
            return self.default_sink()
        known = self._sinks.get(key)
        if known is None:
            try:
                known = self._own(tenant) if self._own else self._default()
            except InputError as exc:
                known = exc
            self._sinks[key] = known
        if isinstance(known, InputError):
            raise known
        return known

    def default_sink(self) -> CacheSink:
        """Return the sink of tenants without a ``cache:`` block; raise InputError (remembered)."""
        known = self._sinks.get("")
        if known is None:
            try:
                known = self._default()
            except InputError as exc:
                known = exc
            self._sinks[""] = known
        if isinstance(known, InputError):
            raise known
        return known

    def close(self) -> None:
        """Close every sink built (a shared connection once is enough; twice is harmless)."""
        for sink in self._sinks.values():
            if not isinstance(sink, InputError):
                sink.close()


def snowflake_destinations(
    settings: Settings,
    connect: Callable[..., Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> CacheDestinations:
    """The Snowflake destinations: tenants' own ``cache:`` blocks, else the settings'.

    :param connect: builds a DB-API connection (default ``snowflake.connector.connect``).
    :param environ: where tenants' ``*_env`` variables are read (default ``os.environ``).
    """
    from fulcrum_sync.sinks.snowflake import SnowflakeConfig, SnowflakeLink, SnowflakeSink

    links: dict[tuple[str, str, str, str], SnowflakeLink] = {}

    def sink(config: SnowflakeConfig) -> CacheSink:
        link = links.get(config.connection_key)
        if link is None:
            link = links[config.connection_key] = SnowflakeLink(config, connect)
        return SnowflakeSink(config, link=link)

    def own(tenant: TenantDef) -> CacheSink:
        assert tenant.cache is not None
        return sink(SnowflakeConfig.from_destination(tenant.cache, tenant.identifier, environ))

    def default() -> CacheSink:
        return sink(SnowflakeConfig.from_settings(settings))

    return CacheDestinations("snowflake", default, own)


def build_destinations(
    target: str,
    settings: Settings,
    engine: Engine,
    connect: Callable[..., Any] | None = None,
) -> CacheDestinations:
    """Return the destinations of ``target`` (``local`` or ``snowflake``); connect to nothing.

    Raises InputError for an unknown target.
    """
    from fulcrum_sync.sinks import TARGETS

    if target == "local":
        from fulcrum_sync.sinks.local import LocalSink

        return CacheDestinations.single(LocalSink(engine))
    if target == "snowflake":
        return snowflake_destinations(settings, connect)
    raise InputError(f"unknown cache target {target!r}: expected one of {', '.join(TARGETS)}")
