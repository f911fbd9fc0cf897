"""The Snowflake cache target: its settings (config.py) and its loads (sink.py)."""

from __future__ import annotations

from fulcrum_sync.sinks.snowflake.config import QUERY_TAG, SnowflakeConfig, load_private_key
from fulcrum_sync.sinks.snowflake.sink import (
    REFUSED_ERRNOS,
    STAGE_SUFFIX,
    SnowflakeLink,
    SnowflakeSink,
    is_refused,
)

__all__ = [
    "QUERY_TAG",
    "REFUSED_ERRNOS",
    "STAGE_SUFFIX",
    "SnowflakeConfig",
    "SnowflakeLink",
    "SnowflakeSink",
    "is_refused",
    "load_private_key",
]
