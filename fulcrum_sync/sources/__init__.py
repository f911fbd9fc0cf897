"""Semantic sources: the Cube REST client, the demo generator, and the factory that picks one.

The Cube client (httpx, PyJWT, tenacity) and the demo generator (numpy) are imported when
first used: importing ``fulcrum_sync.sources.base`` (every command does) loads neither.
"""

from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING, Any

from fulcrum_sync import __version__
from fulcrum_sync.config import Settings
from fulcrum_sync.sources.base import FetchRequest, SeriesRow, Source, SourceMetadata

if TYPE_CHECKING:
    import httpx

    from fulcrum_sync.sources.cube import CubeSource
    from fulcrum_sync.sources.demo import DemoSource
    from fulcrum_sync.sources.guard import SourceGuard

_LAZY = {
    "CubeSource": "fulcrum_sync.sources.cube",
    "SECRET_SETTING": "fulcrum_sync.sources.cube",
    "URL_SETTING": "fulcrum_sync.sources.cube",
    "DemoSource": "fulcrum_sync.sources.demo",
    "SourceGuard": "fulcrum_sync.sources.guard",
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
    "SeriesRow",
    "Source",
    "SourceGuard",
    "SourceMetadata",
    "build_http_client",
    "build_source",
]


def build_http_client(settings: Settings) -> httpx.Client:
    """Return the process's one HTTP client for Cube, pooled for ``settings.workers`` threads."""
    import httpx

    timeout = settings.cube_timeout_seconds
    pool = settings.workers + 4  # one connection per worker, headroom for metadata calls
    return httpx.Client(
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
        headers={"User-Agent": f"fulcrum-sync/{__version__}"},
    )


def build_source(
    settings: Settings,
    *,
    http_client: httpx.Client | None = None,
    long_run: bool = False,
    stop: threading.Event | None = None,
) -> Source:
    """Return the source the settings name; a Cube source shares one HTTP client and one guard.

    :param settings: ``source`` picks ``demo`` (seeded by ``demo_seed``) or ``cube``.
    :param http_client: the client Cube requests go through; built from the settings when
        None (and then closed by the source's ``close()``).
    :param long_run: a backfill: while Cube is down, requests wait for the breaker's trial
        (``cube_breaker_reset_seconds`` later) instead of ending the run at once.
    :param stop: the run's stop event: the source's waits wake on it and nothing more is sent.
    :raises InputError: when the Cube source lacks its URL or secret, or the URL is not http(s).
    """
    if settings.source == "demo":
        from fulcrum_sync.sources.demo import DemoSource

        return DemoSource(settings.demo_seed)
    from fulcrum_sync.sources.cube import (
        BUDGET_SETTING,
        RESET_SETTING,
        SECRET_SETTING,
        URL_SETTING,
        CubeSource,
    )
    from fulcrum_sync.sources.guard import SourceGuard
    from fulcrum_sync.sources.urls import check_http_url, check_secret, public_url

    url = check_http_url(
        settings.cube_api_url, URL_SETTING, "FULCRUM_SYNC_SOURCE=cube needs the Cube base URL"
    )
    secret = check_secret(
        settings.cube_api_secret,
        SECRET_SETTING,
        "FULCRUM_SYNC_SOURCE=cube needs the secret that signs Cube's JWTs",
    )
    owns_client = http_client is None
    endpoint = public_url(url.rstrip("/").removesuffix("/cubejs-api/v1"))
    guard = SourceGuard(
        f"Cube at {endpoint}",
        endpoint=endpoint,
        max_concurrency=settings.cube_max_concurrency,
        retry_budget=settings.cube_retry_budget,
        reset_seconds=settings.cube_breaker_reset_seconds,
        long_run=long_run,
        max_pause=settings.cube_wait_deadline_seconds,
        stop=stop,
        budget_setting=BUDGET_SETTING,
        reset_setting=RESET_SETTING,
    )
    return CubeSource(
        url,
        secret,
        client=http_client if http_client is not None else build_http_client(settings),
        tenant_claim=settings.cube_tenant_claim,
        token_ttl_seconds=settings.cube_token_ttl_seconds,
        wait_deadline_seconds=settings.cube_wait_deadline_seconds,
        retries=settings.cube_retries,
        page_size=settings.cube_page_size,
        guard=guard,
        close_client=owns_client,
    )
