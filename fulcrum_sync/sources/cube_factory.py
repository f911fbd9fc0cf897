"""Build the Cube source from the settings: one HTTP client, one guard, one retry policy."""

from __future__ import annotations

import threading

import httpx

from fulcrum_sync import __version__
from fulcrum_sync.config import CubeSettings, Settings
from fulcrum_sync.sources.cube import CubeSource
from fulcrum_sync.sources.cube_http import (
    BUDGET_SETTING,
    RESET_SETTING,
    SECRET_SETTING,
    URL_SETTING,
    cube_base,
    cube_label,
)
from fulcrum_sync.sources.guard import SourceGuard
from fulcrum_sync.sources.policy import RetryPolicy
from fulcrum_sync.sources.urls import check_http_url, check_secret, public_url

PURPOSE_URL = "FULCRUM_SYNC_SOURCE=cube needs the Cube base URL"
PURPOSE_SECRET = "FULCRUM_SYNC_SOURCE=cube needs the secret that signs Cube's JWTs"


def retry_policy(cube: CubeSettings) -> RetryPolicy:
    """The retry policy the Cube settings describe."""
    return RetryPolicy(
        attempts=cube.retries + 1,
        backoff_base=0.5,
        backoff_max=30.0,
        jitter=0.5,
        deadline=cube.wait_deadline_seconds,
        budget=cube.retry_budget,
    )


def build_http_client(settings: Settings) -> httpx.Client:
    """Return an HTTP client for Cube, pooled for ``settings.workers`` threads."""
    timeout = settings.cube.timeout_seconds
    pool = settings.workers + 4  # one connection per worker, headroom for metadata calls
    return httpx.Client(
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
        headers={"User-Agent": f"fulcrum-sync/{__version__}"},
    )


def endpoint_guard(
    url: str,
    cube: CubeSettings,
    policy: RetryPolicy,
    *,
    long_run: bool,
    stop: threading.Event | None,
) -> SourceGuard:
    """The breaker, throttle, concurrency cap and retry budget of one Cube endpoint."""
    return SourceGuard(
        cube_label(url),
        max_concurrency=cube.max_concurrency,
        retry_budget=policy.budget,
        reset_seconds=cube.breaker_reset_seconds,
        long_run=long_run,
        max_pause=policy.deadline,
        stop=stop,
        budget_setting=BUDGET_SETTING,
        reset_setting=RESET_SETTING,
        endpoint=public_url(cube_base(url)),
    )


def build_cube_source(
    settings: Settings,
    *,
    http_client: httpx.Client | None = None,
    long_run: bool = False,
    stop: threading.Event | None = None,
) -> CubeSource:
    """The Cube source of the settings (``FULCRUM_SYNC_CUBE_*``).

    :raises InputError: the URL is missing or not http(s), or the secret is missing.
    """
    cube = settings.cube
    url = check_http_url(cube.api_url, URL_SETTING, PURPOSE_URL)
    secret = check_secret(cube.api_secret, SECRET_SETTING, PURPOSE_SECRET)
    policy = retry_policy(cube)
    return CubeSource(
        url,
        secret,
        client=http_client if http_client is not None else build_http_client(settings),
        policy=policy,
        tenant_claim=cube.tenant_claim,
        token_ttl_seconds=cube.token_ttl_seconds,
        page_size=cube.page_size,
        guard=endpoint_guard(url, cube, policy, long_run=long_run, stop=stop),
        close_client=http_client is None,
    )
