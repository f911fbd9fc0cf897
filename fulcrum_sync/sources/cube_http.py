"""Cube's HTTP surface as the client sees it: paths, setting names, how an endpoint is named,
one logical request, and how an httpx error becomes ours (transient or not)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import httpx

from fulcrum_sync.domain import SourceError
from fulcrum_sync.sources.paging import QueryLimitError, is_query_limit
from fulcrum_sync.sources.policy import RetryPolicy
from fulcrum_sync.sources.urls import public_url

LOAD_PATH = "/cubejs-api/v1/load"
META_PATH = "/cubejs-api/v1/meta"
CONTINUE_WAIT = "Continue wait"
URL_SETTING = "FULCRUM_SYNC_CUBE_API_URL"
SECRET_SETTING = "FULCRUM_SYNC_CUBE_API_SECRET"
CLAIM_SETTING = "FULCRUM_SYNC_CUBE_TENANT_CLAIM"
DEADLINE_SETTING = "FULCRUM_SYNC_CUBE_WAIT_DEADLINE_SECONDS"
CONCURRENCY_SETTING = "FULCRUM_SYNC_CUBE_MAX_CONCURRENCY"
BUDGET_SETTING = "FULCRUM_SYNC_CUBE_RETRY_BUDGET"
RESET_SETTING = "FULCRUM_SYNC_CUBE_BREAKER_RESET_SECONDS"

SNIPPET = 200  # characters of a malformed answer quoted in its error
DEFAULT_POLICY = RetryPolicy()


@dataclass(frozen=True, slots=True)
class _Call:
    """One logical request: ``what`` names it in errors and logs (``acme::orders (day)``)."""

    method: str
    path: str
    what: str
    tenant: str
    tenant_id: int | None = None
    body: dict[str, Any] | None = None


class TransientError(SourceError):
    """A failure worth retrying: a timeout, a dropped connection, HTTP 5xx."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Throttled(SourceError):
    """HTTP 429: the guard pauses every worker; the request is sent again after the pause."""


def cube_base(url: str) -> str:
    """The deployment's base URL: ``/cubejs-api/v1`` and trailing slashes taken off."""
    return url.strip().rstrip("/").removesuffix("/cubejs-api/v1")


def cube_label(url: str) -> str:
    """How messages name the deployment: ``Cube at http://cube:4000`` (no credentials)."""
    return f"Cube at {public_url(cube_base(url))}"


def translate_http_error(
    redact: Callable[[str], str], exc: httpx.HTTPError, what: str
) -> SourceError:
    """Map an httpx error to ours: timeouts and network failures are transient."""
    detail = redact(str(exc)) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return TransientError(f"timed out ({type(exc).__name__}: {detail})")
    if isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError):
        return TransientError(f"connection failed ({type(exc).__name__}: {detail})")
    return SourceError(f"{what}: HTTP request to Cube failed ({type(exc).__name__}: {detail})")


def read_answer(
    response: httpx.Response, what: str, redact: Callable[[str], str]
) -> dict[str, Any]:
    """The JSON object of an answer; Cube's own ``error`` (but Continue wait) is raised."""
    status = response.status_code
    try:
        answer = response.json()
    except ValueError:
        snippet = redact(response.text[:SNIPPET])
        raise SourceError(
            f"{what}: malformed JSON from Cube (HTTP {status}): {snippet!r}"
        ) from None
    if not isinstance(answer, dict):
        raise SourceError(f"{what}: malformed Cube answer: expected a JSON object")
    answer = cast(dict[str, Any], answer)
    error = answer.get("error")
    if error is not None and error != CONTINUE_WAIT:
        text = redact(str(error))
        if is_query_limit(text):
            raise QueryLimitError(f"{what}: Cube refused a page: {text}")
        raise SourceError(f"{what}: Cube error: {text}")
    return answer
