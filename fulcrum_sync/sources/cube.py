"""The Cube REST source: JWT auth, "Continue wait" polling, retries and limit/offset paging.

Several series go as one multi request (:mod:`~fulcrum_sync.sources.cube_multi`). Every
request goes through the source's one :class:`SourceGuard` (shared by all workers: 429
pauses, a concurrency cap, one retry budget, a breaker); a page over Cube's query limit
halves the page size. Failures surface as SourceError; nothing above this module sees an
httpx error, and the secret and the JWTs it signs never appear in messages or logs.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

import httpx
import tenacity
from pydantic import SecretStr

from fulcrum_sync.domain import (
    QueryRejectedError,
    RefusedError,
    SourceDownError,
    SourceError,
    SourceStats,
)
from fulcrum_sync.secrets import redact, register_secret
from fulcrum_sync.sources import cube_http as http
from fulcrum_sync.sources.base import FetchRequest, SeriesRow, SourceMetadata
from fulcrum_sync.sources.cube_auth import TenantAuth
from fulcrum_sync.sources.cube_http import (
    CONTINUE_WAIT,
    DEFAULT_POLICY,
    LOAD_PATH,
    META_PATH,
    Throttled,
    TransientError,
    _Call,
    cube_base,
    cube_label,
    read_answer,
    translate_http_error,
)
from fulcrum_sync.sources.cube_multi import MultiFetcher
from fulcrum_sync.sources.cube_protocol import (
    error_detail,
    parse_meta,
    retry_after,
)
from fulcrum_sync.sources.guard import SourceGuard
from fulcrum_sync.sources.paging import PageSize, QueryLimitError, is_query_limit
from fulcrum_sync.sources.policy import RetryPolicy
from fulcrum_sync.sources.urls import check_http_url, check_secret, public_url

log = logging.getLogger(__name__)


class CubeSource:
    """Fetch series from a Cube deployment's REST API.

    :param base_url: the deployment, e.g. ``https://cube.example.com`` (``/cubejs-api/v1``
        is appended; a URL that already ends with it is accepted too).
    :param api_secret: the secret that signs the HS256 JWTs Cube checks.
    :param client: the process's shared, thread-safe ``httpx.Client`` (injected).
    :param policy: attempts, backoff, deadline (of "Continue wait" polling and 429 pauses)
        and the run's retry budget.
    :param tenant_claim: the JWT claim that carries the tenant identifier (default ``tenant_id``).
    :param token_ttl_seconds: lifetime of a JWT; tokens are cached per tenant until near expiry.
    :param page_size: rows per request; pages continue with ``offset`` until a short page.
    :param poll_interval: pause between "Continue wait" polls, in seconds.
    :param guard: the endpoint's breaker, throttle, concurrency cap and retry budget
        (default: a guard with its defaults and ``policy.budget``, on this source's clock,
        sleep and stop event).
    :param sleep: how to pause (tests pass a recorder); ``clock`` returns epoch seconds.
    :param close_client: close ``client`` in ``close()`` (when ``build_source`` created it).
    :param stop: the run's stop event (SIGTERM/Ctrl-C): every wait wakes on it and the
        request in progress raises StopRequested; nothing is sent after it is set. Ignored
        when ``guard`` is given (the guard holds it).
    :param secret_hint: where the secret comes from, named when Cube refuses it.
    :param url_hint: where the URL comes from, named when Cube answers 404.
    :param per_tenant: ``api_secret`` may be empty: every tenant's credential is given with
        :meth:`use_credential` (a tenant's own Cube, from its catalog ``cube:`` block).
    :raises InputError: when the URL is not http(s) or the secret is empty.

    Every error it raises starts with ``Cube at <url without credentials>:`` and carries
    that address as ``endpoint``.
    """

    name = "cube"

    def __init__(
        self,
        base_url: str,
        api_secret: SecretStr,
        *,
        client: httpx.Client,
        policy: RetryPolicy = DEFAULT_POLICY,
        tenant_claim: str = "tenant_id",
        token_ttl_seconds: int = 300,
        page_size: int = 10_000,
        poll_interval: float = 0.5,
        guard: SourceGuard | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        close_client: bool = False,
        stop: threading.Event | None = None,
        secret_hint: str = http.SECRET_SETTING,
        url_hint: str = http.URL_SETTING,
        per_tenant: bool = False,
    ) -> None:
        base = cube_base(check_http_url(base_url, url_hint, "the Cube source needs its base URL"))
        if not per_tenant:  # else each tenant brings its own (``use_credential``)
            check_secret(api_secret, secret_hint, "the Cube source signs JWTs with it")
        if page_size < 1 or token_ttl_seconds < 1:
            raise ValueError("page_size and token_ttl_seconds must be positive")
        self.base_url = base
        self.endpoint = public_url(base)
        self.label = cube_label(base)
        self.secret_hint, self.url_hint = secret_hint, url_hint
        self._secret = api_secret
        register_secret(api_secret)  # masked in every message and log line from now on
        self._client = client
        self.policy = policy
        self.tenant_claim = tenant_claim
        self.token_ttl_seconds = token_ttl_seconds
        self._pages = PageSize(page_size)
        self._multi = MultiFetcher(self._load, self._pages, self.label)
        self.poll_interval = poll_interval
        self._backoff = policy.backoff()
        self._sleep = sleep
        self._clock = clock
        injected = None if sleep is time.sleep else sleep  # real time: interruptible waits
        self.guard = guard or SourceGuard(
            self.label,
            retry_budget=policy.budget,
            max_pause=policy.deadline,
            clock=clock,
            sleep=injected,
            stop=stop,
            budget_setting=http.BUDGET_SETTING,
            reset_setting=http.RESET_SETTING,
            endpoint=self.endpoint,
        )
        self._close_client = close_client
        self._auth = TenantAuth(
            api_secret, tenant_claim=tenant_claim, ttl_seconds=token_ttl_seconds, clock=clock
        )

    def use_credential(self, tenant: str, credential: SecretStr, kind: str, where: str) -> None:
        """Authenticate ``tenant`` with its own secret (``kind`` ``secret``: sign its JWTs) or
        fixed token (``token``: send it); ``where`` names its variable or file in errors."""
        register_secret(credential)
        self._auth.use(tenant, credential, kind, where)

    @property
    def retries(self) -> int:
        """Retries of one request after its first attempt (the policy's)."""
        return self.policy.retries

    @property
    def wait_deadline_seconds(self) -> float:
        """How long one request waits on "Continue wait" and 429s (the policy's deadline)."""
        return self.policy.deadline

    def __repr__(self) -> str:
        return (
            f"CubeSource(base_url={self.base_url!r}, tenant_claim={self.tenant_claim!r}, "
            f"page_size={self.page_size}, retries={self.retries})"
        )

    @property
    def page_size(self) -> int:
        """Rows per page now (halved from the setting if Cube's query limit is lower)."""
        return self._pages.size

    # ----------------------------------------------------------------- public API

    def fetch_series(self, request: FetchRequest) -> list[SeriesRow]:
        """Return every row of the series, paging with limit/offset until a short page.

        Raises SourceDownError when Cube is down (the breaker is open), SourceError otherwise,
        StopRequested when the run is asked to stop while it waits.
        """
        (outcome,) = self.fetch_many([request])
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def fetch_many(self, requests: Sequence[FetchRequest]) -> list[list[SeriesRow] | Exception]:
        """Return the rows (or the error) of each request, in as few round trips as Cube allows.

        One multi request per tenant and grain, one query per measure-sharing group
        (:mod:`fulcrum_sync.sources.cube_multi`). Raises StopRequested only.
        """
        outcomes = self._multi.fetch(requests)
        for outcome in outcomes:
            if isinstance(outcome, SourceError | RefusedError):
                self._label(outcome)
        return outcomes

    def _load(
        self, body: dict[str, Any], what: str, tenant: str, tenant_id: int | None
    ) -> dict[str, Any]:
        return self._call(_Call("POST", LOAD_PATH, what, tenant, tenant_id, body))

    def fetch_metadata(self, tenant: str) -> SourceMetadata:
        """Return every measure and dimension name of every cube (and view) ``tenant`` sees."""
        what = f"metadata for {tenant}"
        with self._named():
            body = self._call(_Call("GET", META_PATH, what, tenant))
            return parse_meta(body, what)

    def stats(self) -> SourceStats:
        """Return the guard's counters (this process) and the page size in use."""
        stats = self.guard.stats(page_size=self._pages.size)
        return replace(stats, queries=self._multi.queries)

    @property
    def multi_refused(self) -> bool:
        """This endpoint refused a multi request (an older Cube): it gets single queries."""
        return self._multi.multi_refused

    def close(self) -> None:
        """Close the HTTP client if this source owns it; forget cached tokens."""
        self._auth.clear()
        if self._close_client:
            self._client.close()

    @contextlib.contextmanager
    def _named(self) -> Iterator[None]:
        """Start every error's message with ``Cube at <url>:`` and set its ``endpoint``.

        StopRequested passes as it is (not a failure of Cube).
        """
        try:
            yield
        except (SourceError, RefusedError) as exc:
            self._label(exc)
            raise

    def _label(self, exc: SourceError | RefusedError) -> None:
        """Start ``exc``'s message with ``Cube at <url>:`` (once) and set its ``endpoint``."""
        prefix = f"{self.label}: "
        if exc.args and isinstance(exc.args[0], str):
            text = exc.args[0].replace(prefix, "")  # a message that quotes an earlier one
            exc.args = (prefix + text, *exc.args[1:])
        exc.endpoint = self.endpoint

    def _redact(self, text: str) -> str:
        """Return ``text`` with the secret and anything that looks like a JWT masked."""
        return redact(text)

    # ----------------------------------------------------------------- HTTP

    def _call(self, call: _Call) -> dict[str, Any]:
        """Send one request, retrying transient failures and polling while Cube computes.

        A tenant's first request goes alone: requests for it from other workers wait for its
        answer, so a refused token is sent once per tenant, not once per worker.
        """
        with self._auth.first_contact(call.tenant):
            return self._poll(call)

    def _poll(self, call: _Call) -> dict[str, Any]:
        deadline = self._clock() + self.wait_deadline_seconds
        polls = 0
        try:
            while True:
                answer = self._send_with_retries(call, deadline)
                if answer.get("error") != CONTINUE_WAIT:
                    return answer
                polls += 1
                remaining = deadline - self._clock()
                if remaining <= 0:
                    raise SourceError(
                        f"{call.what}: Cube was still computing ('Continue wait') after "
                        f"{self.wait_deadline_seconds:g}s and {polls} polls; try again later or "
                        f"raise {http.DEADLINE_SETTING}"
                    )
                log.debug("%s: Cube answered 'Continue wait' (poll %d)", call.what, polls)
                self.guard.backoff(min(self.poll_interval, remaining))
        finally:
            self.guard.end_call()

    def _send_with_retries(self, call: _Call, deadline: float) -> dict[str, Any]:
        """Send with tenacity (backoff with jitter, Retry-After honoured) within the budget.

        Exhausted retries open the breaker: SourceDownError, or in a long run a wait for the
        breaker's trial and another round.
        """
        out_of_attempts = tenacity.stop_after_attempt(self.retries + 1)
        while True:
            budget_spent = False
            started = self._clock()

            def stop(state: tenacity.RetryCallState) -> bool:
                """Stop after ``retries`` retries, or when the run's retry budget is spent."""
                nonlocal budget_spent
                if out_of_attempts(state):
                    return True
                budget_spent = not self.guard.take_retry()
                return budget_spent

            def log_retry(state: tenacity.RetryCallState) -> None:
                exc = state.outcome.exception() if state.outcome is not None else None
                pause = state.next_action.sleep if state.next_action is not None else 0.0
                n, total = state.attempt_number, self.retries
                log.warning("%s: %s; retry %d/%d in %.1fs", call.what, exc, n, total, pause)

            retrying = tenacity.Retrying(
                stop=stop,
                wait=self._wait,
                retry=tenacity.retry_if_exception_type(TransientError),
                sleep=self.guard.backoff,
                before_sleep=log_retry,
                reraise=True,
            )
            try:
                return retrying(self._send_unthrottled, call, deadline)
            except TransientError as exc:
                self.guard.check_stop(call.what)  # a signal during the last attempt: not down
                attempts = retrying.statistics.get("attempt_number", self.retries + 1)
                failure = (
                    f"{call.what}: Cube request failed after {attempts} attempt"
                    f"{'s' if attempts != 1 else ''}; last error: {exc}"
                )
                if budget_spent:
                    failure += f" (the run's retry budget is spent: {self.guard.retry_budget})"
                if self.guard.exhausted(failure, since=started):
                    continue  # a long run: wait for the breaker's trial, then try again
                raise SourceDownError(failure) from exc

    def _wait(self, state: tenacity.RetryCallState) -> float:
        """Return the pause before the next attempt: Retry-After if given, else backoff."""
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, TransientError) and exc.retry_after is not None:
            return min(exc.retry_after, self.wait_deadline_seconds)
        return float(self._backoff(state))

    def _send_unthrottled(self, call: _Call, deadline: float) -> dict[str, Any]:
        """Send until Cube stops answering 429 (each one pauses every worker), or the deadline."""
        while True:
            try:
                return self._send_once(call)
            except Throttled as exc:
                if self._clock() >= deadline:
                    raise SourceError(
                        f"{call.what}: Cube kept answering {exc} for "
                        f"{self.wait_deadline_seconds:g}s; lower {http.CONCURRENCY_SETTING} "
                        f"or raise {http.DEADLINE_SETTING}"
                    ) from exc

    def _send_once(self, call: _Call) -> dict[str, Any]:
        """Send one HTTP request and return its JSON object, or raise (transient or not)."""
        what = call.what
        self._auth.check(call.tenant, what)
        headers = {"Authorization": self._auth.token(call.tenant, call.tenant_id)}
        try:
            with self.guard.slot():
                response = self._client.request(
                    call.method, self.base_url + call.path, json=call.body, headers=headers
                )
        except SourceDownError as exc:
            raise SourceDownError(f"{what}: {exc}") from None
        except httpx.HTTPError as exc:
            raise translate_http_error(self._redact, exc, what) from exc
        status = response.status_code
        detail = error_detail(response) if status >= 400 else ""
        self._auth.answered(call.tenant, call.tenant_id, status)
        if status == 429:
            pause = self.guard.throttled(retry_after(response), what)
            raise Throttled(f"HTTP 429{detail} (every worker pauses {pause:g}s)")
        if status >= 500 and not is_query_limit(detail):
            raise TransientError(f"HTTP {status}{detail}", retry_after=retry_after(response))
        self.guard.answered()
        if is_query_limit(detail):
            raise QueryLimitError(f"{what}: Cube refused a page (HTTP {status}{detail})")
        if status in (401, 403):
            refused = RefusedError(
                f"{what}: Cube authentication failed (HTTP {status}{detail}): "
                f"check {self._auth.hint(call.tenant, self.secret_hint)} (the credential "
                f"Cube verifies) and {http.CLAIM_SETTING} "
                f"(the claim that carries the tenant, now {self.tenant_claim!r})"
            )
            raise self._auth.refuse(call.tenant, refused)  # checked once per tenant
        if status == 404:
            raise RefusedError(
                f"{what}: Cube answered HTTP 404 for {call.path}: check {self.url_hint} "
                f"(now {self.endpoint!r})"
            )
        if status >= 400:
            raise QueryRejectedError(f"{what}: Cube rejected the query (HTTP {status}){detail}")
        return read_answer(response, what, self._redact)
