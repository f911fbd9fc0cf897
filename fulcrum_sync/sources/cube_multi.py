"""Fewer Cube round trips: several series in one ``queryType: "multi"`` request.

A batch of FetchRequests (a context's base and dimensions; or the contexts of a tenant's
metrics the sync planner groups) is sent as few requests and queries as Cube allows:

- requests that differ only in their metric's measure (same tenant, cube, time dimension,
  filters, grain, window and dimension) share one query with several measures;
- the queries of one tenant and grain go as one multi request (POST ``/load`` with
  ``{"query": [...], "queryType": "multi"}``); Cube 1.x answers ``"blendingQuery"`` with
  one ``results[]`` entry per query. Paging goes on only for the queries that filled their
  page;
- a multi request Cube rejects (HTTP 400) is sent again as single queries. When all of those
  succeed the endpoint refuses multi (an older Cube): it is remembered and the endpoint gets
  single queries from then on. A shared query Cube rejects is split into one query per
  metric, so the bad metric fails alone.

Every request still goes through the source's ``send`` (Continue wait, 429 pauses, retries,
the breaker and the stop event work as for one series).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fulcrum_sync.domain import QueryRejectedError, RefusedError, SourceError, StopRequested
from fulcrum_sync.sources.base import FetchRequest, SeriesRow, cube_of
from fulcrum_sync.sources.cube_protocol import build_query, load_data, parse_rows
from fulcrum_sync.sources.paging import PageSize, QueryLimitError

log = logging.getLogger(__name__)

MULTI = "multi"
BLENDING = "blendingQuery"

# send(body, what, tenant, tenant_id) -> Cube's JSON answer (raises SourceError/RefusedError)
Send = Callable[[dict[str, Any], str, str, int | None], dict[str, Any]]
Outcome = list[SeriesRow] | Exception


def share_key(request: FetchRequest) -> tuple[Any, ...]:
    """Requests with the same key can be one query with several measures."""
    metric = request.metric
    return (
        request.tenant,
        cube_of(metric.measure),
        metric.time_dimension,
        request.grain.value,
        request.window.start,
        request.window.end,
        request.dimension.member if request.dimension else None,
        tuple((f.member, f.operator, tuple(f.values)) for f in request.filters),
    )


@dataclass(frozen=True, slots=True)
class Shared:
    """One Cube query serving the requests at ``members`` (indexes into the batch)."""

    members: tuple[int, ...]
    first: FetchRequest
    measures: tuple[str, ...]

    def query(self, limit: int, offset: int) -> dict[str, Any]:
        query = build_query(self.first, limit=limit, offset=offset)
        query["measures"] = list(self.measures)
        return query


def share(requests: Sequence[FetchRequest], indexes: Sequence[int]) -> list[Shared]:
    """Group ``requests[i]`` for ``i`` in ``indexes`` into shared queries (first-seen order)."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i in indexes:
        groups.setdefault(share_key(requests[i]), []).append(i)
    out = []
    for members in groups.values():
        measures = tuple(dict.fromkeys(requests[i].metric.measure for i in members))
        out.append(Shared(tuple(members), requests[members[0]], measures))
    return out


def describe(requests: Sequence[FetchRequest], shared: Sequence[Shared]) -> str:
    """How errors name a request: ``acme::orders (day)`` or ``acme::orders, refunds (day, 3
    queries)``."""
    first = shared[0].first
    metrics = dict.fromkeys(requests[i].metric.metric_id for s in shared for i in s.members)
    what = f"{first.tenant}::{', '.join(metrics)} ({first.grain.value}"
    if len(shared) == 1 and first.dimension is not None and len(shared[0].members) == 1:
        return f"{what}, {first.dimension.dimension_id})"
    return f"{what}, {len(shared)} queries)" if len(shared) > 1 else f"{what})"


class MultiFetcher:
    """Fetch a batch of series in as few requests and queries as the endpoint allows.

    :param send: sends one /load body through the source (polling, retries, the guard).
    :param pages: the source's page size (shared by every worker).
    :param endpoint: how the warning about an older Cube names the endpoint.
    """

    def __init__(self, send: Send, pages: PageSize, endpoint: str) -> None:
        self._send = send
        self._pages = pages
        self._endpoint = endpoint
        self._lock = threading.Lock()
        self.multi_refused = False
        self.queries = 0  # queries asked of Cube (a multi request counts each of its queries)

    def fetch(self, requests: Sequence[FetchRequest]) -> list[Outcome]:
        """Return the rows (or the error) of each request, in order.

        StopRequested is raised (the run is stopping); every other failure is the outcome of
        the requests it concerns.
        """
        results: list[Outcome | None] = [None] * len(requests)
        parts: dict[tuple[str, str], list[int]] = {}
        for i, request in enumerate(requests):
            parts.setdefault((request.tenant, request.grain.value), []).append(i)
        for indexes in parts.values():  # one JWT and one granularity per request
            shared = share(requests, indexes)
            if len(shared) > 1 and not self.multi_refused:
                self._multi(requests, shared, results)
            else:
                for one in shared:
                    self._single(requests, one, results)
        return [r if r is not None else SourceError("not fetched") for r in results]

    # ----------------------------------------------------------------- multi

    def _multi(
        self, requests: Sequence[FetchRequest], shared: list[Shared], results: list[Any]
    ) -> None:
        try:
            pages = self._page(requests, shared)
        except StopRequested:
            raise
        except QueryRejectedError as exc:  # an older Cube, or one bad query among them
            self._fallback(requests, shared, results, exc)
            return
        except (SourceError, RefusedError) as exc:
            for one in shared:
                for i in one.members:
                    results[i] = exc
            return
        for one, data in zip(shared, pages, strict=True):
            self._parse(requests, one, data, results)

    def _fallback(
        self,
        requests: Sequence[FetchRequest],
        shared: list[Shared],
        results: list[Any],
        refusal: QueryRejectedError,
    ) -> None:
        """Send the queries one by one; all accepted: the endpoint refuses multi requests."""
        for one in shared:
            self._single(requests, one, results)
        members = [i for one in shared for i in one.members]
        rejected = any(isinstance(results[i], QueryRejectedError) for i in members)
        if not rejected and not self.multi_refused:
            with self._lock:
                self.multi_refused = True
            log.warning(
                "%s refused a multi query request (%s); its queries are sent one by one from "
                "now on (Cube 1.x answers them: upgrading it saves round trips)",
                self._endpoint,
                refusal,
            )

    # ----------------------------------------------------------------- single

    def _single(self, requests: Sequence[FetchRequest], one: Shared, results: list[Any]) -> None:
        """One query (paged); a shared query Cube rejects is split, one query per metric."""
        try:
            (data,) = self._page(requests, [one])
        except StopRequested:
            raise
        except QueryRejectedError as exc:
            if len(one.measures) > 1:
                for i in one.members:
                    alone = Shared((i,), requests[i], (requests[i].metric.measure,))
                    self._single(requests, alone, results)
                return
            for i in one.members:
                results[i] = exc
            return
        except (SourceError, RefusedError) as exc:
            for i in one.members:
                results[i] = exc
            return
        self._parse(requests, one, data, results)

    def _parse(
        self, requests: Sequence[FetchRequest], one: Shared, data: list[Any], results: list[Any]
    ) -> None:
        for i in one.members:
            try:
                results[i] = parse_rows(data, requests[i])
            except SourceError as exc:
                results[i] = SourceError(f"{describe(requests, [one])}: {exc}")

    # ----------------------------------------------------------------- paging

    def _page(self, requests: Sequence[FetchRequest], shared: list[Shared]) -> list[list[Any]]:
        """Every row of each shared query: pages go on only for queries that filled theirs."""
        rows: list[list[Any]] = [[] for _ in shared]
        offsets = [0] * len(shared)
        pending = list(range(len(shared)))
        first = shared[0].first
        while pending:
            size = self._pages.size
            queries = [shared[k].query(size, offsets[k]) for k in pending]
            what = describe(requests, [shared[k] for k in pending])
            try:
                pages = self._load(queries, what, first)
            except QueryLimitError as exc:
                self._pages.shrink(size, exc)  # raises at the floor
                continue
            self._pages.confirm(size)
            still = []
            for k, data in zip(pending, pages, strict=True):
                rows[k].extend(data)
                if len(data) >= size:
                    offsets[k] += len(data)
                    still.append(k)
            pending = still
        return rows

    def _load(
        self, queries: list[dict[str, Any]], what: str, first: FetchRequest
    ) -> list[list[Any]]:
        with self._lock:
            self.queries += len(queries)
        if len(queries) == 1:
            body: dict[str, Any] = {"query": queries[0]}
            return [load_data(self._send(body, what, first.tenant, first.tenant_id), what)]
        body = {"query": queries, "queryType": MULTI}
        answer = self._send(body, what, first.tenant, first.tenant_id)
        return blending_data(answer, len(queries), what)


def blending_data(answer: dict[str, Any], expected: int, what: str) -> list[list[Any]]:
    """The ``data`` of each result of a blendingQuery answer, in the order of the queries."""
    results = answer.get("results")
    if not isinstance(results, list) or len(results) != expected:
        count = len(results) if isinstance(results, list) else "no"
        raise SourceError(
            f"{what}: malformed Cube answer: {count} results for {expected} queries "
            f"(queryType {answer.get('queryType')!r})"
        )
    out = []
    for result in results:
        data = result.get("data") if isinstance(result, dict) else None
        if not isinstance(data, list):
            raise SourceError(f"{what}: malformed Cube answer: a result has no 'data' list")
        out.append(data)
    return out
