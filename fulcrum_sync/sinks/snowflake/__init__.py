"""The Snowflake cache target: its settings (config.py), its connection (link.py), its sink
(sink.py) and its batched loads (batch.py)."""

from __future__ import annotations

from fulcrum_sync.sinks.snowflake.batch import SnowflakeBatch, supports_multi_statement
from fulcrum_sync.sinks.snowflake.config import QUERY_TAG, SnowflakeConfig, load_private_key
from fulcrum_sync.sinks.snowflake.link import REFUSED_ERRNOS, SnowflakeLink, is_refused
from fulcrum_sync.sinks.snowflake.sink import SnowflakeSink

__all__ = [
    "QUERY_TAG",
    "REFUSED_ERRNOS",
    "SnowflakeBatch",
    "SnowflakeConfig",
    "SnowflakeLink",
    "SnowflakeSink",
    "is_refused",
    "load_private_key",
    "supports_multi_statement",
]
