"""The Cube REST source: JWT auth, "Continue wait" polling, retries and limit/offset paging.

Failures surface as SourceError; nothing above this module sees an httpx error. The API
secret and the JWTs it signs never appear in messages, reprs or logs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import tenacity
from pydantic import SecretStr

from fulcrum_sync.domain import InputError, QueryRejectedError, RefusedError, SourceError
from fulcrum_sync.secrets import redact, register_secret
from fulcrum_sync.sources.base import FetchRequest, SeriesRow, SourceMetadata
from fulcrum_sync.sources.cube_protocol import build_query, load_data, parse_rows, retry_after

log = logging.getLogger(__name__)

LOAD_PATH = "/cubejs-api/v1/load"
META_PATH = "/cubejs-api/v1/meta"
CONTINUE_WAIT = "Continue wait"
URL_SETTING = "FULCRUM_SYNC_CUBE_API_URL"
SECRET_SETTING = "FULCRUM_SYNC_CUBE_API_SECRET"
CLAIM_SETTING = "FULCRUM_SYNC_CUBE_TENANT_CLAIM"
DEADLINE_SETTING = "FULCRUM_SYNC_CUBE_WAIT_DEADLINE_SECONDS"

_SNIPPET = 200


@dataclass(frozen=True, slots=True)
class _Call:
    """One logical request: ``what`` names it in errors and logs (``acme::orders (day)``)."""

    method: str
    path: str
    what: str
    tenant: str
    tenant_id: int | None = None
    body: dict[str, Any] | None = None


class _TransientError(SourceError):
    """A failure worth retrying: a timeout, a dropped connection, HTTP 5xx or 429."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


__all__ = ["CubeSource", "build_query", "parse_rows"]


class CubeSource:
    """Fetch series from a Cube deployment's REST API.

    :param base_url: the deployment, e.g. ``https://cube.example.com`` (``/cubejs-api/v1``
        is appended; a URL that already ends with it is accepted too).
    :param api_secret: the secret that signs the HS256 JWTs Cube checks.
    :param client: the process's shared, thread-safe ``httpx.Client`` (injected).
    :param tenant_claim: the JWT claim that carries the tenant identifier (default ``tenant_id``).
    :param token_ttl_seconds: lifetime of a JWT; tokens are cached per tenant until near expiry.
    :param wait_deadline_seconds: how long to poll while Cube answers "Continue wait".
    :param retries: retries (after the first attempt) on timeouts, connection errors, 5xx, 429.
    :param page_size: rows per request; pages continue with ``offset`` until a short page.
    :param poll_interval: pause between "Continue wait" polls, in seconds.
    :param backoff_initial: first retry delay (exponential with jitter); ``backoff_max`` caps it.
    :param sleep: how to pause (tests pass a recorder); ``clock`` returns epoch seconds.
    :param close_client: close ``client`` in ``close()`` (when ``build_source`` created it).
    :raises InputError: when the URL or the secret is empty.
    """

    name = "cube"

    def __init__(
        self,
        base_url: str,
        api_secret: SecretStr,
        *,
        client: httpx.Client,
        tenant_claim: str = "tenant_id",
        token_ttl_seconds: int = 300,
        wait_deadline_seconds: float = 600.0,
        retries: int = 5,
        page_size: int = 10_000,
        poll_interval: float = 0.5,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        close_client: bool = False,
    ) -> None:
        base = base_url.strip().rstrip("/")
        base = base.removesuffix("/cubejs-api/v1")
        if not base:
            raise InputError(f"{URL_SETTING} is not set: the Cube source needs its base URL")
        if not api_secret.get_secret_value():
            raise InputError(f"{SECRET_SETTING} is not set: the Cube source signs JWTs with it")
        if page_size < 1 or retries < 0 or token_ttl_seconds < 1:
            raise ValueError("page_size and token_ttl_seconds must be positive, retries >= 0")
        self.base_url = base
        self._secret = api_secret
        register_secret(api_secret)  # masked in every message and log line from now on
        self._client = client
        self.tenant_claim = tenant_claim
        self.token_ttl_seconds = token_ttl_seconds
        self.wait_deadline_seconds = wait_deadline_seconds
        self.retries = retries
        self.page_size = page_size
        self.poll_interval = poll_interval
        jitter = tenacity.wait_random(0, backoff_initial)
        self._backoff = (
            tenacity.wait_exponential(multiplier=backoff_initial, max=backoff_max) + jitter
        )
        self._sleep = sleep
        self._clock = clock
        self._close_client = close_client
        self._tokens: dict[tuple[str, int | None], tuple[str, float]] = {}
        self._refused: dict[str, RefusedError] = {}  # tenant -> why Cube refused it
        self._accepted: set[str] = set()  # tenants whose token Cube took
        self._first_contact: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"CubeSource(base_url={self.base_url!r}, tenant_claim={self.tenant_claim!r}, "
            f"page_size={self.page_size}, retries={self.retries})"
        )

    # ----------------------------------------------------------------- public API

    def fetch_series(self, request: FetchRequest) -> list[SeriesRow]:
        """Return every row of the series, paging with limit/offset until a short page."""
        what = f"{request.tenant}::{request.metric.metric_id} ({request.grain.value}"
        what += f", {request.dimension.dimension_id})" if request.dimension else ")"
        rows: list[SeriesRow] = []
        offset = 0
        while True:
            query = build_query(request, limit=self.page_size, offset=offset)
            call = _Call(
                "POST", LOAD_PATH, what, request.tenant, request.tenant_id, {"query": query}
            )
            data = load_data(self._call(call), what)
            try:
                rows.extend(parse_rows(data, request))
            except SourceError as exc:
                raise SourceError(f"{what}: {exc}") from None
            if len(data) < self.page_size:
                return rows
            offset += len(data)

    def fetch_metadata(self, tenant: str) -> SourceMetadata:
        """Return every measure and dimension name of every cube (and view) ``tenant`` sees."""
        what = f"metadata for {tenant}"
        body = self._call(_Call("GET", META_PATH, what, tenant))
        cubes = body.get("cubes")
        if not isinstance(cubes, list):
            raise SourceError(f"{what}: malformed Cube answer: no 'cubes' list")
        measures: set[str] = set()
        dimensions: set[str] = set()
        for cube in cubes:
            if not isinstance(cube, dict):
                continue
            for kind, names in (("measures", measures), ("dimensions", dimensions)):
                for member in cube.get(kind) or ():
                    if isinstance(member, dict) and isinstance(member.get("name"), str):
                        names.add(member["name"])
        return SourceMetadata(frozenset(measures), frozenset(dimensions))

    def close(self) -> None:
        """Close the HTTP client if this source owns it; forget cached tokens."""
        with self._lock:
            self._tokens.clear()
        if self._close_client:
            self._client.close()

    # ----------------------------------------------------------------- auth

    def _token(self, tenant: str, tenant_id: int | None) -> str:
        """Return a JWT for the tenant, reusing a cached one until it is near expiry."""
        now = self._clock()
        margin = min(30.0, self.token_ttl_seconds / 5)
        with self._lock:
            cached = self._tokens.get((tenant, tenant_id))
            if cached is not None and cached[1] - now > margin:
                return cached[0]
            claims: dict[str, Any] = {"tenant_identifier": tenant}
            if tenant_id is not None:
                claims["tenant_numeric_id"] = tenant_id
            claims[self.tenant_claim] = tenant
            claims["iat"] = int(now)
            claims["exp"] = int(now) + self.token_ttl_seconds
            token = jwt.encode(claims, self._secret.get_secret_value(), algorithm="HS256")
            self._tokens[(tenant, tenant_id)] = (token, float(claims["exp"]))
            return token

    def _forget_token(self, tenant: str, tenant_id: int | None) -> None:
        with self._lock:
            self._tokens.pop((tenant, tenant_id), None)

    def _redact(self, text: str) -> str:
        """Return ``text`` with the secret and anything that looks like a JWT masked."""
        return redact(text)

    # ----------------------------------------------------------------- HTTP

    def _call(self, call: _Call) -> dict[str, Any]:
        """Send one request, retrying transient failures and polling while Cube computes.

        A tenant's first request goes alone: requests for it from other workers wait for its
        answer, so a refused token is sent once per tenant, not once per worker.
        """
        if call.tenant in self._accepted:
            return self._poll(call)
        with self._lock:
            first = self._first_contact.setdefault(call.tenant, threading.Lock())
        with first:
            return self._poll(call)

    def _poll(self, call: _Call) -> dict[str, Any]:
        deadline = self._clock() + self.wait_deadline_seconds
        polls = 0
        while True:
            answer = self._send_with_retries(call)
            if answer.get("error") != CONTINUE_WAIT:
                return answer
            polls += 1
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise SourceError(
                    f"{call.what}: Cube was still computing ('Continue wait') after "
                    f"{self.wait_deadline_seconds:g}s and {polls} polls; try again later or "
                    f"raise {DEADLINE_SETTING}"
                )
            log.debug("%s: Cube answered 'Continue wait' (poll %d)", call.what, polls)
            self._sleep(min(self.poll_interval, remaining))

    def _send_with_retries(self, call: _Call) -> dict[str, Any]:
        """Send with tenacity: exponential backoff and jitter, Retry-After honoured."""

        def log_retry(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome is not None else None
            pause = state.next_action.sleep if state.next_action is not None else 0.0
            n, total = state.attempt_number, self.retries
            log.warning("%s: %s; retry %d/%d in %.1fs", call.what, exc, n, total, pause)

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.retries + 1),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(_TransientError),
            sleep=self._sleep,
            before_sleep=log_retry,
            reraise=True,
        )
        try:
            return retrying(self._send_once, call)
        except _TransientError as exc:
            attempts = self.retries + 1
            raise SourceError(
                f"{call.what}: Cube request failed after {attempts} attempt"
                f"{'s' if attempts != 1 else ''}; last error: {exc}"
            ) from exc

    def _wait(self, state: tenacity.RetryCallState) -> float:
        """Return the pause before the next attempt: Retry-After if given, else backoff."""
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, _TransientError) and exc.retry_after is not None:
            return min(exc.retry_after, self.wait_deadline_seconds)
        return float(self._backoff(state))

    def _send_once(self, call: _Call) -> dict[str, Any]:
        """Send one HTTP request and return its JSON object, or raise (transient or not)."""
        what = call.what
        refused = self._refused.get(call.tenant)
        if refused is not None:
            raise RefusedError(f"{what}: not sent: {refused}")
        headers = {"Authorization": self._token(call.tenant, call.tenant_id)}
        try:
            response = self._client.request(
                call.method, self.base_url + call.path, json=call.body, headers=headers
            )
        except httpx.HTTPError as exc:
            raise self._translate(exc, what) from exc
        status = response.status_code
        if status not in (401, 403):
            self._accepted.add(call.tenant)  # Cube took the token: no need to wait in line
        if status == 429 or status >= 500:
            raise _TransientError(
                f"HTTP {status}{self._detail(response)}", retry_after=retry_after(response)
            )
        if status in (401, 403):
            self._forget_token(call.tenant, call.tenant_id)
            refused = RefusedError(
                f"{what}: Cube authentication failed (HTTP {status}{self._detail(response)}): "
                f"check {SECRET_SETTING} (the secret that signs the JWT) and {CLAIM_SETTING} "
                f"(the claim that carries the tenant, now {self.tenant_claim!r})"
            )
            with self._lock:  # checked once: later requests for this tenant are not sent
                self._refused[call.tenant] = refused
            raise refused
        if status == 404:
            raise RefusedError(
                f"{what}: Cube answered HTTP 404 for {call.path}: check {URL_SETTING} "
                f"(now {self.base_url!r})"
            )
        if status >= 400:
            raise QueryRejectedError(
                f"{what}: Cube rejected the query (HTTP {status}){self._detail(response)}"
            )
        try:
            answer = response.json()
        except ValueError:
            snippet = self._redact(response.text[:_SNIPPET])
            raise SourceError(
                f"{what}: malformed JSON from Cube (HTTP {status}): {snippet!r}"
            ) from None
        if not isinstance(answer, dict):
            raise SourceError(f"{what}: malformed Cube answer: expected a JSON object")
        error = answer.get("error")
        if error is not None and error != CONTINUE_WAIT:
            raise SourceError(f"{what}: Cube error: {self._redact(str(error))}")
        return answer

    def _detail(self, response: httpx.Response) -> str:
        """Return ``": <Cube's error text>"`` for an error response (redacted, shortened)."""
        try:
            payload = response.json()
        except ValueError:
            text = response.text.strip()
        else:
            error = payload.get("error") if isinstance(payload, dict) else None
            text = str(error) if error is not None else response.text.strip()
        text = self._redact(" ".join(text.split()))[:_SNIPPET]
        return f": {text}" if text else ""

    def _translate(self, exc: httpx.HTTPError, what: str) -> SourceError:
        """Map an httpx error to ours: timeouts and network failures are transient."""
        detail = self._redact(str(exc)) or type(exc).__name__
        if isinstance(exc, httpx.TimeoutException):
            return _TransientError(f"timed out ({type(exc).__name__}: {detail})")
        if isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError):
            return _TransientError(f"connection failed ({type(exc).__name__}: {detail})")
        return SourceError(f"{what}: HTTP request to Cube failed ({type(exc).__name__}: {detail})")
