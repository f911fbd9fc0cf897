"""Semantic sources: the Cube REST client, the demo generator, and the registry that picks one.

The Cube client (httpx, PyJWT, tenacity) and the demo generator (numpy) are imported when
first used: importing ``fulcrum_sync.sources.base`` (every command does) loads neither.
"""

from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING, Any

from fulcrum_sync.config import Settings
from fulcrum_sync.sources.base import FetchRequest, SeriesRow, Source, SourceMetadata

if TYPE_CHECKING:
    import httpx

    from fulcrum_sync.sources.cube import CubeSource
    from fulcrum_sync.sources.demo import DemoSource
    from fulcrum_sync.sources.guard import SourceGuard
    from fulcrum_sync.sources.policy import RetryPolicy
    from fulcrum_sync.sources.registry import Connections

_LAZY = {
    "CubeSource": "fulcrum_sync.sources.cube",
    "SECRET_SETTING": "fulcrum_sync.sources.cube",
    "URL_SETTING": "fulcrum_sync.sources.cube",
    "DemoSource": "fulcrum_sync.sources.demo",
    "SourceGuard": "fulcrum_sync.sources.guard",
    "RetryPolicy": "fulcrum_sync.sources.policy",
}


def __getattr__(name: str) -> Any:
    """Import a source's module on first use (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)


__all__ = [
    "CubeSource",
    "DemoSource",
    "FetchRequest",
    "RetryPolicy",
    "SeriesRow",
    "Source",
    "SourceGuard",
    "SourceMetadata",
    "build_http_client",
    "build_source",
]


def build_http_client(settings: Settings) -> httpx.Client:
    """Return an HTTP client for Cube, pooled for ``settings.workers`` threads."""
    from fulcrum_sync.sources.cube_factory import build_http_client as build

    return build(settings)


def build_source(
    settings: Settings,
    *,
    http_client: httpx.Client | None = None,
    long_run: bool = False,
    stop: threading.Event | None = None,
    connections: Connections | None = None,
) -> Source:
    """Return the source the settings name (``FULCRUM_SYNC_SOURCE``, from the registry).

    :param http_client: the client Cube requests go through; built from the settings when
        None (and then closed by the source's ``close()``).
    :param long_run: a backfill: while Cube is down, requests wait for the breaker's trial
        (``cube.breaker_reset_seconds`` later) instead of ending the run at once.
    :param stop: the run's stop event: the source's waits wake on it and nothing more is sent.
    :param connections: returns each tenant's own ``cube:`` block (or None): tenants with
        one go to their own Cube, each endpoint with its own client, breaker and budget.
    :raises InputError: an unknown source, or a source's missing or bad settings.
    """
    from fulcrum_sync.sources.registry import source_entry

    entry = source_entry(settings.source)
    return entry.build(
        settings, http_client=http_client, long_run=long_run, stop=stop, connections=connections
    )
