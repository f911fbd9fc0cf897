"""Per-tenant Cube connections: each tenant's requests go to its own Cube or the settings'.

A tenant with a catalog ``cube:`` block talks to its URL with its own signing secret or
fixed token; the others use ``FULCRUM_SYNC_CUBE_*``. Each distinct endpoint (URL) has its
own HTTP client, breaker, throttle (``FULCRUM_SYNC_CUBE_MAX_CONCURRENCY`` per endpoint) and
retry budget, so one tenant's dead Cube fails only the requests behind that endpoint.

A tenant whose variable or file is missing gets InputError naming it on each of its
requests (its contexts fail; the others run). A tenant whose own Cube refuses its
credential or address (HTTP 401/403/404) gets TenantRefusedError: the first refusal is
logged once and remembered for that endpoint and credential, so no further request is sent
with it, and only the contexts of the tenants behind it fail. The settings' Cube refusing
stays a RefusedError that ends the run (exit 2): its credential is everyone's. Nothing
here reads the store: the tenants' blocks come from the ``connections`` callable.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import httpx

from fulcrum_sync.config import Settings
from fulcrum_sync.domain import InputError, RefusedError, SourceStats, TenantRefusedError
from fulcrum_sync.logs import log_event
from fulcrum_sync.sources.base import FetchOutcome, FetchRequest, Rows, SourceMetadata
from fulcrum_sync.sources.cube import CubeSource
from fulcrum_sync.sources.cube_factory import (
    build_cube_source,
    build_http_client,
    endpoint_guard,
    retry_policy,
)
from fulcrum_sync.sources.cube_http import cube_base
from fulcrum_sync.sources.urls import public_url

if TYPE_CHECKING:
    from fulcrum_sync.catalog_connections import CubeConnection

log = logging.getLogger(__name__)
Connections = Callable[[], Mapping[str, "CubeConnection | None"]]


class TenantRoutedSource:
    """The Cube source of a catalog whose tenants may bring their own Cube.

    :param settings: the settings' Cube (for tenants without a block) and the knobs every
        endpoint shares (timeouts, concurrency, retries, budget, page size).
    :param connections: returns ``{tenant identifier: its cube block or None}``; read once,
        on the first request.
    :param long_run: a backfill: a down endpoint's requests wait for its breaker's trial.
    :param stop: the run's stop event (every endpoint's waits wake on it).
    """

    name = "cube"

    def __init__(
        self,
        settings: Settings,
        connections: Connections,
        *,
        long_run: bool = False,
        stop: threading.Event | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        self._settings = settings
        self._connections = connections
        self._long_run = long_run
        self._stop = stop
        self._client = http_client
        self._lock = threading.Lock()
        self._blocks: Mapping[str, CubeConnection | None] | None = None
        self._default: CubeSource | InputError | None = None
        self._endpoints: dict[str, CubeSource] = {}  # base URL -> its source
        self._routes: dict[str, CubeSource | InputError] = {}  # tenant -> source or problem
        # (endpoint base, credential reference) -> the refusal every tenant using them gets
        self._refused: dict[tuple[str, str], TenantRefusedError] = {}
        self._gates: dict[tuple[str, str], threading.Event] = {}  # set once first answered

    # ----------------------------------------------------------------- routing

    def source_for(self, tenant: str) -> CubeSource:
        """The endpoint source ``tenant``'s requests go to; InputError when its settings or
        credential are missing (the same error on every request of that tenant)."""
        with self._lock:
            route = self._routes.get(tenant)
            if route is None:
                route = self._route(tenant)
                self._routes[tenant] = route
        if isinstance(route, TenantRefusedError):
            raise TenantRefusedError(str(route), endpoint=route.endpoint, tenant=route.tenant)
        if isinstance(route, InputError):
            raise InputError(str(route))
        return route

    def _prepare(self) -> Mapping[str, CubeConnection | None]:
        """On the first request: read the blocks and build every endpoint they use (no request
        is sent), so that one endpoint down never looks like all of them down."""
        if self._blocks is None:
            self._blocks = dict(self._connections())
            for block in self._blocks.values():
                if block is not None:
                    self._endpoint(block.url)
            if any(block is None for block in self._blocks.values()):
                try:
                    self._default = build_cube_source(
                        self._settings,
                        http_client=self._client,
                        long_run=self._long_run,
                        stop=self._stop,
                    )
                except InputError as exc:  # only the tenants that need it fail
                    self._default = exc
        return self._blocks

    def _route(self, tenant: str) -> CubeSource | InputError:
        block = self._prepare().get(tenant)
        if block is None:
            return (
                self._default
                if self._default is not None
                else InputError(f"tenant {tenant} is not in the catalog this source was built for")
            )
        refused = self._refused.get((cube_base(block.url), block.reference))
        if refused is not None:  # another tenant's request with it was refused already
            return refused
        try:
            credential = block.read_credential(tenant)
        except InputError as exc:
            return exc
        source = self._endpoint(block.url)
        source.use_credential(tenant, credential, block.auth, block.reference)
        return source

    def _endpoint(self, url: str) -> CubeSource:
        base = cube_base(url)
        source = self._endpoints.get(base)
        if source is None:
            cube = self._settings.cube
            policy = retry_policy(cube)
            source = CubeSource(
                base,
                cube.api_secret,
                client=build_http_client(self._settings),
                policy=policy,
                tenant_claim=cube.tenant_claim,
                token_ttl_seconds=cube.token_ttl_seconds,
                page_size=cube.page_size,
                guard=endpoint_guard(base, cube, policy, long_run=self._long_run, stop=self._stop),
                close_client=True,
                url_hint="the tenant's cube.url in the catalog",
                per_tenant=True,
            )
            self._endpoints[base] = source
        return source

    def unusable(self, tenants: set[str]) -> dict[str, InputError]:
        """The configuration problem of each of ``tenants`` that cannot be sent a request
        (a missing variable or file, no Cube URL for it); reads the credentials, sends nothing."""
        problems: dict[str, InputError] = {}
        for tenant in sorted(tenants):
            try:
                self.source_for(tenant)
            except InputError as exc:
                problems[tenant] = exc
        return problems

    def endpoints(self) -> dict[str, list[str]]:
        """``{endpoint without credentials: [tenants routed to it]}`` so far."""
        out: dict[str, list[str]] = {}
        with self._lock:
            for tenant, route in sorted(self._routes.items()):
                if isinstance(route, CubeSource):
                    out.setdefault(route.endpoint, []).append(tenant)
        return out

    # ----------------------------------------------------------------- Source

    def fetch_series(self, request: FetchRequest) -> Rows:
        """Fetch from the tenant's endpoint (see :meth:`CubeSource.fetch_series`)."""
        (outcome,) = self.fetch_many([request])
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def fetch_many(self, requests: Sequence[FetchRequest]) -> list[FetchOutcome]:
        """Each tenant's requests from its endpoint (see :meth:`CubeSource.fetch_many`); a
        tenant without a usable endpoint gets its InputError for each of its requests."""
        outcomes: list[FetchOutcome] = [InputError("not fetched")] * len(requests)
        by_tenant: dict[str, list[int]] = {}
        for i, request in enumerate(requests):
            by_tenant.setdefault(request.tenant, []).append(i)
        for tenant, indexes in by_tenant.items():
            with self._first_contact(tenant):
                try:
                    source = self.source_for(tenant)
                except InputError as exc:
                    for i in indexes:
                        outcomes[i] = exc
                    continue
                fetched = source.fetch_many([requests[i] for i in indexes])
                for i, outcome in zip(indexes, fetched, strict=True):
                    outcomes[i] = self._own_refusal(tenant, outcome)
        return outcomes

    @contextlib.contextmanager
    def _first_contact(self, tenant: str) -> Iterator[None]:
        """The first fetch with a tenant's own endpoint and credential goes alone; fetches of
        the other tenants sharing both wait for its answer (a refusal is then not sent again
        by them: one request, however many tenants and workers)."""
        with self._lock:
            block = self._prepare().get(tenant)
        if block is None:
            yield
            return
        key = (cube_base(block.url), block.reference)
        with self._lock:
            gate = self._gates.get(key)
            leader = gate is None
            if gate is None:
                gate = self._gates[key] = threading.Event()
        if not leader:
            gate.wait()
            yield
            return
        try:
            yield
        finally:
            gate.set()

    def fetch_metadata(self, tenant: str) -> SourceMetadata:
        """The members ``tenant``'s endpoint lists for it."""
        try:
            return self.source_for(tenant).fetch_metadata(tenant)
        except RefusedError as exc:
            error = self._own_refusal(tenant, exc)
            raise (error if isinstance(error, Exception) else exc) from None

    def _own_refusal(self, tenant: str, outcome: FetchOutcome) -> FetchOutcome:
        """``outcome``, or TenantRefusedError when it is a refusal by ``tenant``'s own Cube
        (remembered: that endpoint and credential are not sent another request)."""
        if not isinstance(outcome, RefusedError):
            return outcome
        block = (self._blocks or {}).get(tenant)
        if block is None:
            return outcome  # the settings' Cube: everyone's credential (ends the run, exit 2)
        key = (cube_base(block.url), block.reference)
        with self._lock:
            known = self._refused.get(key)
            first = known is None
            if known is None:
                label, _, rest = str(outcome).replace(": not sent: ", ": ").partition(": ")
                known = self._refused[key] = TenantRefusedError(
                    f"{label}: credentials refused for tenant {tenant}: {rest}; only the "
                    f"contexts behind this endpoint and {block.reference} fail, the others run",
                    endpoint=outcome.endpoint,
                    tenant=tenant,
                )
            for other, route in list(self._routes.items()):  # no request with it any more
                theirs = self._blocks.get(other) if self._blocks else None
                same = theirs is not None and (cube_base(theirs.url), theirs.reference) == key
                if same and isinstance(route, CubeSource):
                    self._routes[other] = known
        if first:
            log_event(
                log,
                "source refused the credentials",
                logging.ERROR,
                endpoint=known.endpoint,
                tenant=tenant,
                error=str(known),
            )
        return TenantRefusedError(str(known), endpoint=known.endpoint, tenant=tenant)

    def _sources(self) -> list[CubeSource]:
        with self._lock:
            found = list(self._endpoints.values())
            default = self._default
        return found + ([default] if isinstance(default, CubeSource) else [])

    def stats(self) -> SourceStats:
        """Every endpoint's counters summed; ``down_since`` only when every endpoint in use is
        down (one dead endpoint does not stop the run: its own requests fail at once)."""
        each = [s.stats() for s in self._sources()]
        if not each:
            return SourceStats()
        total = each[0]
        for more in each[1:]:
            total = replace(
                total,
                requests=total.requests + more.requests,
                queries=total.queries + more.queries,
                retries=total.retries + more.retries,
                retry_budget=(total.retry_budget or 0) + (more.retry_budget or 0),
                throttled=total.throttled + more.throttled,
                throttled_waits=total.throttled_waits + more.throttled_waits,
                breaker_opened=total.breaker_opened + more.breaker_opened,
            )
        down = [s for s in each if s.down_since is not None]
        if len(down) < len(each):
            return replace(total, down_since=None, down_cause=None)
        first = min(down, key=lambda s: s.down_since.timestamp() if s.down_since else 0.0)
        return replace(total, down_since=first.down_since, down_cause=first.down_cause)

    def down_endpoints(self) -> list[str]:
        """The endpoints whose breaker is open, without credentials."""
        return [s.endpoint for s in self._sources() if s.stats().down_since is not None]

    def close(self) -> None:
        for source in self._sources():
            source.close()


def endpoint_names(
    settings: Settings, blocks: Mapping[str, CubeConnection | None]
) -> dict[str, list[str]]:
    """``{endpoint: [tenants]}`` for ``doctor``: each tenant's own URL or the settings'."""
    out: dict[str, list[str]] = {}
    default = public_url(cube_base(settings.cube.api_url)) if settings.cube.api_url else ""
    for tenant, block in sorted(blocks.items()):
        where = public_url(cube_base(block.url)) if block is not None else default
        out.setdefault(where or "(FULCRUM_SYNC_CUBE_API_URL unset)", []).append(tenant)
    return out
