"""Cache targets: Snowflake, and the local state database (the default)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fulcrum_sync.domain import InputError
from fulcrum_sync.sinks.base import CacheSink, LoadStats
from fulcrum_sync.sinks.identifiers import CacheTable

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from fulcrum_sync.config import Settings

TARGETS = ("local", "snowflake")

__all__ = ["TARGETS", "CacheSink", "CacheTable", "LoadStats", "build_sink"]


def build_sink(target: str, settings: Settings, engine: Engine) -> CacheSink:
    """Return the sink for ``target`` (``local`` or ``snowflake``), not yet connected.

    Raises InputError for an unknown target or unusable Snowflake settings (missing account,
    no credentials, an unreadable key or a wrong passphrase).
    """
    if target == "local":
        from fulcrum_sync.sinks.local import LocalSink

        return LocalSink(engine)
    if target == "snowflake":
        from fulcrum_sync.sinks.snowflake import SnowflakeConfig, SnowflakeSink

        return SnowflakeSink(SnowflakeConfig.from_settings(settings))
    raise InputError(f"unknown cache target {target!r}: expected one of {', '.join(TARGETS)}")
