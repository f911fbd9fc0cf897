"""One Cube request per context (issue 26): multi requests, shared queries, paging, fallback.

Against the fake Cube 1.x (tests/cube_server.py) in-process: the multi body's shape, the
blendingQuery answer parsed into the same rows as single queries, paging only the queries
that filled their page, an older Cube that refuses multi remembered per endpoint,
"Continue wait" and a 429 on a multi request, and a shared query Cube rejects split so the
bad metric fails alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx
import jwt
import pytest
from cube_server import SECRET, FakeCube, Reply, Rows, series_rows
from pydantic import SecretStr

from fulcrum_sync.catalog import DimensionDef, MetricDef
from fulcrum_sync.domain import Grain, QueryRejectedError, SourceDownError, Window
from fulcrum_sync.sources import CubeSource
from fulcrum_sync.sources.base import FetchRequest, SeriesRow
from fulcrum_sync.sources.cube_protocol import parse_rows

TIME = "orders.created_at"
REGION = DimensionDef(dimension_id="region", member="orders.region")
CHANNEL = DimensionDef(dimension_id="channel", member="orders.channel")
SLICES = {"orders.region": ["east", "west", "north"], "orders.channel": ["store", "web"]}
CUBES = {
    "orders": {
        "measures": ["orders.total", "orders.count", "orders.refunds"],
        "dimensions": [TIME, "orders.region", "orders.channel"],
    }
}
WINDOW = Window(date(2025, 7, 1), date(2025, 7, 10))


def data(query: dict[str, Any], claims: dict[str, Any]) -> Rows:
    """Ten days; a value per measure (its name's length) and per slice."""
    start, end = (date.fromisoformat(d[:10]) for d in query["timeDimensions"][0]["dateRange"])
    measure = query["measures"][0]
    member = (query.get("dimensions") or [None])[0]
    points: list[tuple[str, str | None, str | None]] = []
    for n in range((end - start).days + 1):
        day = date.fromordinal(start.toordinal() + n).isoformat()
        if member is None:
            points.append((day, f"{len(measure) * 100 + n}.00", None))
        else:
            points.extend(
                (day, f"{len(measure) + 10 * i + n}.50", s) for i, s in enumerate(SLICES[member])
            )
    return series_rows(query, points)


def metric(metric_id: str, measure: str) -> MetricDef:
    return MetricDef(
        metric_id=metric_id, measure=measure, time_dimension=TIME, dimensions=(REGION, CHANNEL)
    )


def requests_of(m: MetricDef, grain: Grain = Grain.DAY) -> list[FetchRequest]:
    """The base and both dimensions of ``m`` (what a context asks for)."""
    return [
        FetchRequest(tenant_id=7, tenant="acme", metric=m, grain=grain, window=WINDOW, dimension=d)
        for d in (None, REGION, CHANNEL)
    ]


@pytest.fixture
def clients() -> Iterator[list[httpx.Client]]:
    made: list[httpx.Client] = []
    yield made
    for client in made:
        client.close()


def source_for(
    fake: FakeCube, clients: list[httpx.Client], url: str = "http://cube.test", **kw: Any
) -> CubeSource:
    client = httpx.Client(transport=fake.transport())
    clients.append(client)
    return CubeSource(url, SecretStr(SECRET), client=client, sleep=lambda s: None, **kw)


def singly(fake: FakeCube, clients: list[httpx.Client], reqs: list[FetchRequest]) -> list[Any]:
    """What one single query per series returns (the reference)."""
    source = source_for(fake, clients)
    return [source.fetch_series(r) for r in reqs]


def test_a_context_is_one_multi_request_with_its_rows_equal_to_single_queries(
    clients: list[httpx.Client],
) -> None:
    fake = FakeCube(data, cubes=CUBES)
    reqs = requests_of(metric("revenue", "orders.total"))
    outcomes = source_for(fake, clients).fetch_many(reqs)
    [sent] = fake.requests
    assert sent.body["queryType"] == "multi" and len(sent.body["query"]) == 3
    assert [q.get("dimensions") for q in sent.queries] == [None, [REGION.member], [CHANNEL.member]]
    assert all(q["limit"] == 10_000 and q["offset"] == 0 for q in sent.queries)
    assert {q["timeDimensions"][0]["granularity"] for q in sent.queries} == {"day"}
    reference = singly(fake, clients, reqs)
    assert outcomes == reference
    assert [len(rows) for rows in outcomes] == [10, 30, 20]
    assert fake.queries == 6  # 3 in the multi request, 3 for the reference


def test_blending_answer_rows_carry_time_granularity_and_parse_like_single_rows() -> None:
    m = metric("revenue", "orders.total")
    [base] = requests_of(m)[:1]
    row = {"orders.created_at.day": "2025-07-01T00:00:00.000", "orders.total": "5.00"}
    blended = {**row, "time.day": "2025-07-01T00:00:00.000"}
    only_time = {"time.day": "2025-07-02T00:00:00.000", "orders.total": "6.00"}
    assert parse_rows([row], base) == parse_rows([blended], base)
    assert parse_rows([only_time], base) == [SeriesRow(date(2025, 7, 2), 6.0, None)]


def test_fake_cube_answers_multi_like_cube_1x() -> None:
    fake = FakeCube(data)
    q = {
        "measures": ["orders.total"],
        "timeDimensions": [
            {"dimension": TIME, "granularity": "day", "dateRange": ["2025-07-01", "2025-07-02"]}
        ],
    }
    week = {**q, "timeDimensions": [{**q["timeDimensions"][0], "granularity": "week"}]}
    token = jwt.encode({"tenant_id": 7}, SECRET, algorithm="HS256")
    headers = {"authorization": f"Bearer {token}"}

    def load(body: dict[str, Any]) -> Reply:
        return fake.handle("POST", "/cubejs-api/v1/load", headers, json.dumps(body).encode())

    answer = load({"query": [q, q], "queryType": "multi"})
    assert answer.status == 200 and answer.json["queryType"] == "blendingQuery"
    assert len(answer.json["results"]) == 2
    assert all("time.day" in r for r in answer.json["results"][0]["data"])
    mixed = load({"query": [q, week], "queryType": "multi"})
    assert mixed.status == 400 and "granularities must match" in mixed.json["error"]
    fake.refuse_multi = True
    assert load({"query": [q, q], "queryType": "multi"}).status == 400


def test_paging_continues_only_the_queries_that_filled_their_page(
    clients: list[httpx.Client],
) -> None:
    fake = FakeCube(data, cubes=CUBES)
    reqs = requests_of(metric("revenue", "orders.total"))  # 10, 30 and 20 rows
    outcomes = source_for(fake, clients, page_size=10).fetch_many(reqs)
    sent = [[(q.get("dimensions"), q["offset"]) for q in r.queries] for r in fake.requests]
    region, channel = [REGION.member], [CHANNEL.member]
    assert sent == [
        [(None, 0), (region, 0), (channel, 0)],
        [(None, 10), (region, 10), (channel, 10)],  # the base filled its page of 10 too
        [(region, 20), (channel, 20)],
        [(region, 30)],
    ]
    assert fake.requests[-1].is_multi is False  # one query left: a plain request
    assert outcomes == singly(fake, clients, reqs)


def test_an_older_cube_refusing_multi_is_remembered_for_its_endpoint_only(
    clients: list[httpx.Client], caplog: pytest.LogCaptureFixture
) -> None:
    old, new = FakeCube(data, cubes=CUBES), FakeCube(data, cubes=CUBES)
    old.refuse_multi = True
    reqs = requests_of(metric("revenue", "orders.total"))
    source = source_for(old, clients, url="http://old-cube.test")
    first = source.fetch_many(reqs)
    assert [r.is_multi for r in old.requests] == [True, False, False, False]
    assert source.multi_refused and "refused a multi query request" in caplog.text
    assert first == singly(new, clients, reqs)
    del old.requests[:]
    again = source.fetch_many(reqs)
    assert [r.is_multi for r in old.requests] == [False, False, False]  # no multi tried
    assert again == first
    other = source_for(new, clients, url="http://new-cube.test")  # another endpoint
    del new.requests[:]
    other.fetch_many(reqs)
    assert [r.is_multi for r in new.requests] == [True] and not other.multi_refused


def test_continue_wait_and_a_429_on_a_multi_request_poll_it_as_one(
    clients: list[httpx.Client],
) -> None:
    fake = FakeCube(data, cubes=CUBES)
    fake.script.extend(
        [Reply.continue_wait(), Reply(429, {"error": "slow down"}, headers={"Retry-After": "0"})]
    )
    reqs = requests_of(metric("revenue", "orders.total"))
    source = source_for(fake, clients, poll_interval=0)
    outcomes = source.fetch_many(reqs)
    assert len(fake.requests) == 3 and all(r.is_multi for r in fake.requests)
    assert all(r.body == fake.requests[0].body for r in fake.requests)  # the same request
    stats = source.stats()
    assert stats.throttled == 1 and stats.requests == 3 and stats.queries == 3
    assert outcomes == singly(fake, clients, reqs)


def test_metrics_sharing_a_cube_are_one_query_per_series_and_a_rejected_one_is_split(
    clients: list[httpx.Client],
) -> None:
    fake = FakeCube(data, cubes=CUBES)
    metrics = [metric("revenue", "orders.total"), metric("orders", "orders.count")]
    reqs = [r for m in metrics for r in requests_of(m)]
    outcomes = source_for(fake, clients).fetch_many(reqs)
    [sent] = fake.requests
    assert len(sent.queries) == 3  # base, region, channel: each with both measures
    assert all(q["measures"] == ["orders.total", "orders.count"] for q in sent.queries)
    assert outcomes == singly(fake, clients, reqs)

    bad = metric("broken", "orders.no_such_measure")
    reqs = [r for m in [*metrics, bad] for r in requests_of(m)]
    del fake.requests[:]
    outcomes = source_for(fake, clients).fetch_many(reqs)
    assert all(isinstance(o, QueryRejectedError) for o in outcomes[6:])
    assert "no_such_measure" in str(outcomes[6]) and "Cube at http://cube.test" in str(outcomes[6])
    assert outcomes[:6] == singly(fake, clients, reqs[:6])


def test_grains_never_share_a_request(clients: list[httpx.Client]) -> None:
    fake = FakeCube(data, cubes=CUBES)
    m = metric("revenue", "orders.total")
    outcomes = source_for(fake, clients).fetch_many(requests_of(m) + requests_of(m, Grain.WEEK))
    assert len(fake.requests) == 2 and not any(isinstance(o, Exception) for o in outcomes)
    grains = [{q["timeDimensions"][0]["granularity"] for q in r.queries} for r in fake.requests]
    assert grains == [{"day"}, {"week"}]


def test_a_down_cube_fails_every_series_of_the_multi_request_and_opens_the_breaker(
    clients: list[httpx.Client],
) -> None:
    fake = FakeCube(data, cubes=CUBES)
    fake.down = True
    reqs = requests_of(metric("revenue", "orders.total"))
    source = source_for(fake, clients)
    outcomes = source.fetch_many(reqs)
    assert all(isinstance(o, SourceDownError) for o in outcomes)
    assert len({id(o) for o in outcomes}) == 1  # one request failed, for all three series
    attempts = len(fake.requests)
    assert attempts == source.retries + 1 and source.stats().breaker_opened == 1
    again = source.fetch_many(reqs)  # the breaker is open: failed at once, nothing sent
    assert all(isinstance(o, SourceDownError) for o in again) and len(fake.requests) == attempts
