"""The Cube REST source against a fake Cube 1.x (in-process transport and a real local server)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import httpx
import jwt
import pytest
from cube_server import SECRET, FakeCube, Recorded, Reply, series_rows
from pydantic import SecretStr

from fulcrum_sync.catalog import DimensionDef, MetricDef
from fulcrum_sync.config import Settings
from fulcrum_sync.domain import (
    Grain,
    InputError,
    QueryRejectedError,
    RefusedError,
    SourceError,
    Window,
)
from fulcrum_sync.sources import CubeSource, DemoSource, RetryPolicy, Source, build_source
from fulcrum_sync.sources.base import FetchRequest, SeriesRow
from fulcrum_sync.sources.cube_protocol import build_query

METRIC = MetricDef(
    metric_id="new_revenue",
    measure="orders.total_amount",
    time_dimension="orders.created_at",
    dimensions=(DimensionDef(dimension_id="region", member="orders.region"),),
)
REGION = METRIC.dimensions[0]
WINDOW = Window(date(2025, 7, 1), date(2025, 7, 5))
CUBES = {
    "orders": {
        "measures": ["orders.total_amount", "orders.count"],
        "dimensions": ["orders.created_at", "orders.region", "orders.channel"],
    }
}


class FakeTime:
    """A clock that only moves when something sleeps; records the sleeps."""

    def __init__(self) -> None:
        self.now = time.time()
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def request(
    dimension: DimensionDef | None = None, window: Window = WINDOW, grain: Grain = Grain.DAY
) -> FetchRequest:
    return FetchRequest(1, "acme", METRIC, grain, window, dimension)


def daily(query: dict[str, Any], claims: dict[str, Any]) -> list[dict[str, Any]]:
    """Four days of data, 2025-07-03 missing (no orders), one null value."""
    points = [
        ("2025-07-01", "21738.00", None),
        ("2025-07-02", "19004.50", None),
        ("2025-07-04", None, None),
        ("2025-07-05", "0.00", None),
    ]
    return series_rows(query, points)


@pytest.fixture
def fake() -> FakeCube:
    return FakeCube(daily, cubes=CUBES)


@pytest.fixture
def clock() -> FakeTime:
    return FakeTime()


def policy(
    retries: int = 3,
    wait_deadline_seconds: float = 10,
    backoff_initial: float = 0.5,
    backoff_max: float = 30.0,
) -> RetryPolicy:
    """The retry policy of the old keyword arguments (jitter as large as the first pause)."""
    return RetryPolicy(
        attempts=retries + 1,
        backoff_base=backoff_initial,
        backoff_max=backoff_max,
        jitter=backoff_initial,
        deadline=wait_deadline_seconds,
    )


def make_source(
    fake: FakeCube, clock: FakeTime, *, poll_interval: float = 0.5, **kwargs: Any
) -> CubeSource:
    retry = {k: kwargs.pop(k) for k in list(kwargs) if k in policy.__code__.co_varnames}
    return CubeSource(
        "http://cube.test",
        SecretStr(SECRET),
        client=httpx.Client(transport=fake.transport()),
        policy=policy(**retry),
        poll_interval=poll_interval,
        sleep=clock.sleep,
        clock=clock.clock,
        **kwargs,
    )


@pytest.fixture
def source(fake: FakeCube, clock: FakeTime) -> Iterator[CubeSource]:
    src = make_source(fake, clock)
    yield src
    src.close()


def assert_no_secrets(exc: BaseException, tokens: list[str]) -> None:
    texts = [str(exc), repr(exc), str(exc.__cause__), repr(exc.__cause__)]
    for text in texts:
        assert SECRET not in text
        for token in tokens:
            assert token not in text
        assert "eyJ" not in text


# --------------------------------------------------------------------------- queries and rows


def test_query_has_measure_time_dimension_order_timezone_limit_offset() -> None:
    query = build_query(request(REGION), limit=10_000, offset=20_000)
    assert query == {
        "measures": ["orders.total_amount"],
        "timeDimensions": [
            {
                "dimension": "orders.created_at",
                "granularity": "day",
                "dateRange": ["2025-07-01", "2025-07-05"],
            }
        ],
        "dimensions": ["orders.region"],
        "order": [["orders.created_at", "asc"], ["orders.region", "asc"]],
        "timezone": "UTC",
        "limit": 10_000,
        "offset": 20_000,
    }
    assert "dimensions" not in build_query(request(), limit=5)


def test_rows_convert_strings_and_times_and_keep_missing_periods_missing(
    source: CubeSource, fake: FakeCube
) -> None:
    rows = source.fetch_series(request())
    assert rows == [
        SeriesRow(date(2025, 7, 1), 21738.0, None),
        SeriesRow(date(2025, 7, 2), 19004.5, None),
        SeriesRow(date(2025, 7, 4), None, None),
        SeriesRow(date(2025, 7, 5), 0.0, None),
    ]
    assert len(fake.requests) == 1
    sent = fake.requests[0]
    assert sent.method == "POST" and sent.path == "/cubejs-api/v1/load"
    assert sent.query["limit"] == 10_000 and sent.query["offset"] == 0


def test_week_grain_rows_are_keyed_by_granularity_member(
    source: CubeSource, fake: FakeCube
) -> None:
    def weekly(query: dict[str, Any], claims: dict[str, Any]) -> list[dict[str, Any]]:
        assert query["timeDimensions"][0]["granularity"] == "week"
        return series_rows(query, [("2025-06-30", "150000.25", "emea"), ("2025-07-07", "1", None)])

    fake.data = weekly
    rows = source.fetch_series(
        request(REGION, Window(date(2025, 6, 30), date(2025, 7, 13)), Grain.WEEK)
    )
    assert rows == [
        SeriesRow(date(2025, 6, 30), 150000.25, "emea"),
        SeriesRow(date(2025, 7, 7), 1.0, None),
    ]


def test_a_row_without_the_time_member_is_a_source_error(
    source: CubeSource, fake: FakeCube
) -> None:
    fake.script.append(Reply(200, {"data": [{"orders.total_amount": "1"}]}))
    with pytest.raises(SourceError, match=r"acme::new_revenue \(day\).*orders\.created_at\.day"):
        source.fetch_series(request())


def test_pages_with_limit_and_offset_until_a_short_page(fake: FakeCube, clock: FakeTime) -> None:
    start = date(2024, 1, 1)
    slices = [f"s{i:02d}" for i in range(25)]

    def many(query: dict[str, Any], claims: dict[str, Any]) -> list[dict[str, Any]]:
        points = [
            ((start + timedelta(days=d)).isoformat(), f"{d}.{i:02d}", s)
            for d in range(1000)
            for i, s in enumerate(slices)
        ]
        return series_rows(query, points)

    fake.data = many
    src = make_source(fake, clock)
    rows = src.fetch_series(request(REGION, Window(start, start + timedelta(days=999))))
    assert len(rows) == 25_000
    assert [r.query["offset"] for r in fake.requests] == [0, 10_000, 20_000]
    assert all(r.query["limit"] == 10_000 for r in fake.requests)
    assert rows[0] == SeriesRow(start, 0.0, "s00")
    assert rows[-1] == SeriesRow(start + timedelta(days=999), 999.24, "s24")
    assert len({(r.date, r.slice) for r in rows}) == 25_000


def test_a_full_last_page_costs_one_empty_request(fake: FakeCube, clock: FakeTime) -> None:
    fake.data = lambda q, c: series_rows(q, [("2025-07-01", "1", f"s{i}") for i in range(20)])
    src = make_source(fake, clock, page_size=10)
    assert len(src.fetch_series(request(REGION))) == 20
    assert [r.query["offset"] for r in fake.requests] == [0, 10, 20]


def test_without_a_limit_cube_would_truncate_at_10000() -> None:
    fake = FakeCube(lambda q, c: [{"n": i} for i in range(12_000)])
    query = build_query(request(), limit=10_000)
    del query["limit"]
    reply = fake._load(query, {})
    assert len(reply.json["data"]) == 10_000  # what the fake (like Cube) does without a limit


# --------------------------------------------------------------------------- auth


def test_jwt_is_signed_with_the_secret_and_carries_the_tenant(
    source: CubeSource, fake: FakeCube, clock: FakeTime
) -> None:
    source.fetch_series(request())
    token = fake.requests[0].token
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["tenant_id"] == "acme"  # the tenant claim (FULCRUM_SYNC_CUBE_TENANT_CLAIM)
    assert claims["tenant_identifier"] == "acme"
    assert claims["tenant_numeric_id"] == 1
    assert 0 < claims["exp"] - clock.now <= 300
    assert claims["exp"] - claims["iat"] == 300
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, "another-secret-of-sufficient-length-000", algorithms=["HS256"])


def test_tenant_claim_is_configurable(fake: FakeCube, clock: FakeTime) -> None:
    src = make_source(fake, clock, tenant_claim="org", token_ttl_seconds=60)
    src.fetch_series(request())
    claims = jwt.decode(fake.requests[0].token, SECRET, algorithms=["HS256"])
    assert claims["org"] == "acme" and claims["exp"] - claims["iat"] == 60


def test_token_is_cached_per_tenant_until_near_expiry(
    source: CubeSource, fake: FakeCube, clock: FakeTime
) -> None:
    source.fetch_series(request())
    source.fetch_series(request())
    other = FetchRequest(2, "initech", METRIC, Grain.DAY, WINDOW)
    source.fetch_series(other)
    clock.now += 290  # 10 s left of a 300 s token: renew
    source.fetch_series(request())
    tokens = [r.token for r in fake.requests]
    assert tokens[0] == tokens[1]
    assert tokens[2] != tokens[0]
    assert jwt.decode(tokens[2], SECRET, algorithms=["HS256"])["tenant_id"] == "initech"
    assert tokens[3] != tokens[0]


def test_403_is_an_auth_error_naming_the_settings(fake: FakeCube, clock: FakeTime) -> None:
    fake.secret = "the-server-expects-another-secret-0000000"
    src = make_source(fake, clock)
    with pytest.raises(RefusedError) as info:
        src.fetch_series(request())
    message = str(info.value)
    assert "authentication failed" in message and "Invalid token" in message
    assert "FULCRUM_SYNC_CUBE_API_SECRET" in message
    assert "FULCRUM_SYNC_CUBE_TENANT_CLAIM" in message
    assert len(fake.requests) == 1  # never retried
    with pytest.raises(RefusedError, match="not sent"):  # checked once per tenant
        src.fetch_metadata("acme")
    assert len(fake.requests) == 1
    assert_no_secrets(info.value, [fake.requests[0].token])


# --------------------------------------------------------------------------- waiting and retrying


def test_continue_wait_is_polled_until_data(
    source: CubeSource, fake: FakeCube, clock: FakeTime
) -> None:
    fake.script.extend([Reply.continue_wait(), Reply.continue_wait()])
    rows = source.fetch_series(request())
    assert len(rows) == 4
    assert len(fake.requests) == 3
    assert clock.sleeps == [0.5, 0.5]


def test_continue_wait_past_the_deadline_is_a_source_error(
    source: CubeSource, fake: FakeCube, clock: FakeTime
) -> None:
    fake.script.extend([Reply.continue_wait()] * 100)
    with pytest.raises(SourceError, match=r"still computing.*10s.*WAIT_DEADLINE"):
        source.fetch_series(request())
    assert sum(clock.sleeps) == pytest.approx(10)
    assert len(fake.requests) == 21


def test_500_then_success_is_retried(
    source: CubeSource, fake: FakeCube, clock: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    fake.script.append(Reply(500, {"error": "Error: connection to database lost"}))
    with caplog.at_level(logging.WARNING, logger="fulcrum_sync.sources.cube"):
        assert len(source.fetch_series(request())) == 4
    assert "acme::new_revenue (day): HTTP 500: Error: connection to database lost" in caplog.text
    assert "retry 1/3" in caplog.text
    assert len(fake.requests) == 2
    assert len(clock.sleeps) == 1 and 0 < clock.sleeps[0] <= 1.0  # backoff 0.5 s + jitter


def test_backoff_grows_exponentially(fake: FakeCube, clock: FakeTime) -> None:
    fake.script.extend([Reply(502, text="Bad Gateway")] * 4)
    src = make_source(fake, clock, retries=4, backoff_initial=1.0, backoff_max=100)
    assert len(src.fetch_series(request())) == 4
    assert len(clock.sleeps) == 4
    for n, pause in enumerate(clock.sleeps):
        assert 2**n <= pause <= 2**n + 1.0


def test_429_honours_retry_after(source: CubeSource, fake: FakeCube, clock: FakeTime) -> None:
    fake.script.append(Reply(429, {"error": "Too Many Requests"}, headers={"Retry-After": "2"}))
    assert len(source.fetch_series(request())) == 4
    assert clock.sleeps == [2.0]
    assert len(fake.requests) == 2


def test_retries_exhausted_report_the_last_status(
    source: CubeSource, fake: FakeCube, clock: FakeTime
) -> None:
    fake.script.extend([Reply(503, {"error": "Service Unavailable"})] * 10)
    with pytest.raises(SourceError, match=r"after 4 attempts; last error: HTTP 503: Service Unav"):
        source.fetch_series(request())
    assert len(fake.requests) == 4
    assert len(clock.sleeps) == 3


def test_400_is_not_retried_and_shows_cubes_error(fake: FakeCube, clock: FakeTime) -> None:
    bad = METRIC.model_copy(update={"measure": "orders.nope"})
    src = make_source(fake, clock)
    with pytest.raises(QueryRejectedError) as info:
        src.fetch_series(FetchRequest(1, "acme", bad, Grain.DAY, WINDOW))
    assert "HTTP 400" in str(info.value)
    assert "'nope' not found for path 'orders.nope'" in str(info.value)
    assert len(fake.requests) == 1 and clock.sleeps == []


@pytest.mark.parametrize(
    ("status", "error"), [(401, RefusedError), (404, RefusedError), (422, QueryRejectedError)]
)
def test_other_4xx_are_not_retried(
    fake: FakeCube, clock: FakeTime, status: int, error: type[Exception]
) -> None:
    fake.script.append(Reply(status, {"error": "nope"}))
    with pytest.raises(error, match=f"HTTP {status}"):
        make_source(fake, clock).fetch_series(request())
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("failure", "words"),
    [(httpx.ReadTimeout, "timed out"), (httpx.ConnectError, "connection failed")],
)
def test_timeouts_and_connect_errors_are_retried_then_fail(
    source: CubeSource,
    fake: FakeCube,
    clock: FakeTime,
    failure: type[httpx.TransportError],
    words: str,
) -> None:
    fake.script.extend([Reply(raise_exc=failure)] * 10)
    with pytest.raises(SourceError, match=f"after 4 attempts; last error: {words}") as info:
        source.fetch_series(request())
    assert len(fake.requests) == 4
    assert isinstance(info.value.__cause__, SourceError)
    assert isinstance(info.value.__cause__.__cause__, failure)


def test_one_timeout_then_success(source: CubeSource, fake: FakeCube) -> None:
    fake.script.append(Reply(raise_exc=httpx.ReadTimeout))
    assert len(source.fetch_series(request())) == 4
    assert len(fake.requests) == 2


def test_malformed_json_is_a_source_error(source: CubeSource, fake: FakeCube) -> None:
    fake.script.append(Reply(200, text="<html>proxy login</html>"))
    with pytest.raises(SourceError, match=r"malformed JSON from Cube.*proxy login"):
        source.fetch_series(request())
    assert len(fake.requests) == 1


@pytest.mark.parametrize("body", [[1, 2], {"no": "data"}, {"data": "nope"}])
def test_unexpected_json_shapes_are_source_errors(
    source: CubeSource, fake: FakeCube, body: Any
) -> None:
    fake.script.append(Reply(200, body))
    with pytest.raises(SourceError, match="malformed Cube answer"):
        source.fetch_series(request())


# --------------------------------------------------------------------------- secrets


FAILURES = {
    "403": Reply(403, {"error": "Invalid token"}),
    "400": Reply(400, {"type": "UserError", "error": "bad query"}),
    "500": Reply(500, {"error": "boom"}),
    "429": Reply(429, {"error": "slow down"}, headers={"Retry-After": "1"}),
    "timeout": Reply(raise_exc=httpx.ReadTimeout),
    "connect": Reply(raise_exc=httpx.ConnectError),
    "malformed": Reply(200, text="{not json"),
    "wait": Reply.continue_wait(),
}


@pytest.mark.parametrize("name", sorted(FAILURES))
def test_secret_and_token_never_leak(
    fake: FakeCube, clock: FakeTime, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    reply = FAILURES[name]
    fake.script.extend([reply] * 40)
    src = make_source(fake, clock, retries=2, wait_deadline_seconds=2)
    expected = RefusedError if name == "403" else SourceError
    with caplog.at_level(logging.DEBUG), pytest.raises(expected) as info:
        src.fetch_series(request())
    tokens = [r.token for r in fake.requests]
    assert tokens and all(tokens)
    assert_no_secrets(info.value, tokens)
    for text in (repr(src), caplog.text):
        assert SECRET not in text and all(t not in text for t in tokens)


def test_server_echoing_the_token_is_redacted(fake: FakeCube, clock: FakeTime) -> None:
    src = make_source(fake, clock)

    def echo(method: str, path: str, headers: dict[str, str], raw: bytes) -> Reply:
        fake.requests.append(Recorded(method, path, headers, None))
        return Reply(400, {"error": f"bad token {headers['authorization']} with {SECRET}"})

    fake.handle = echo  # type: ignore[method-assign]
    with pytest.raises(SourceError) as info:
        src.fetch_series(request())
    assert "***" in str(info.value)
    assert_no_secrets(info.value, [fake.requests[0].token])


# --------------------------------------------------------------------------- metadata


def test_metadata_lists_every_measure_and_dimension(source: CubeSource, fake: FakeCube) -> None:
    meta = source.fetch_metadata("acme")
    assert meta.measures == {"orders.total_amount", "orders.count"}
    assert meta.dimensions == {"orders.created_at", "orders.region", "orders.channel"}
    sent = fake.requests[0]
    assert (sent.method, sent.path) == ("GET", "/cubejs-api/v1/meta")
    assert jwt.decode(sent.token, SECRET, algorithms=["HS256"])["tenant_id"] == "acme"


def test_metadata_without_cubes_is_a_source_error(source: CubeSource, fake: FakeCube) -> None:
    fake.script.append(Reply(200, {"something": "else"}))
    with pytest.raises(SourceError, match="no 'cubes' list"):
        source.fetch_metadata("acme")


# --------------------------------------------------------------------------- real HTTP server


def test_real_server_timeout_is_retried_then_reported(fake: FakeCube) -> None:
    fake.script.extend([Reply(delay=0.5, json={"data": []})] * 3)
    with fake.serve() as url, httpx.Client(timeout=0.05) as client:
        src = CubeSource(
            url, SecretStr(SECRET), client=client, policy=policy(2), sleep=lambda s: None
        )
        with pytest.raises(SourceError, match="after 3 attempts; last error: timed out"):
            src.fetch_series(request())
    assert len(fake.requests) == 3


def test_real_server_connection_refused_is_retried() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with httpx.Client(timeout=1) as client:
        src = CubeSource(
            f"http://127.0.0.1:{port}",
            SecretStr(SECRET),
            client=client,
            policy=policy(1),
            sleep=lambda s: None,
        )
        with pytest.raises(SourceError, match="after 2 attempts; last error: connection failed"):
            src.fetch_series(request())


def test_real_server_shared_by_worker_threads(fake: FakeCube) -> None:
    fake.script.extend([Reply.continue_wait()] * 4)
    with fake.serve() as url:
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            source="cube",
            cube_api_url=url + "/cubejs-api/v1/",
            cube_api_secret=SecretStr(SECRET),
            workers=8,
        )
        src = build_source(settings)
        assert isinstance(src, CubeSource)
        src.poll_interval = 0.01
        results: list[int] = []
        errors: list[BaseException] = []

        def work(i: int) -> None:
            try:
                tenant = FetchRequest(
                    i, f"t{i % 3}", METRIC, Grain.DAY, WINDOW, REGION if i % 2 else None
                )
                results.append(len(src.fetch_series(tenant)))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        src.close()
    assert errors == []
    assert results == [4] * 16
    assert len({r.token for r in fake.requests}) >= 3  # one token per tenant (t0, t1, t2) or so


# --------------------------------------------------------------------------- build_source


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_build_source_defaults_to_the_demo() -> None:
    src = build_source(settings(demo_seed=7))
    assert isinstance(src, DemoSource) and src.seed == 7


@pytest.mark.parametrize(
    ("values", "setting"),
    [
        ({"cube_api_secret": SecretStr(SECRET)}, "FULCRUM_SYNC_CUBE_API_URL"),
        ({"cube_api_url": "http://cube.test"}, "FULCRUM_SYNC_CUBE_API_SECRET"),
        ({"cube_api_url": "cube.test", "cube_api_secret": SecretStr(SECRET)}, "http"),
    ],
)
def test_build_source_refuses_an_incomplete_cube_configuration(
    values: dict[str, Any], setting: str
) -> None:
    with pytest.raises(InputError, match=setting) as info:
        build_source(settings(source="cube", **values))
    assert SECRET not in str(info.value)


def test_build_source_wires_settings_into_the_cube_source(fake: FakeCube) -> None:
    client = httpx.Client(transport=fake.transport())
    src: Source = build_source(
        settings(
            source="cube",
            cube_api_url="http://cube.test/",
            cube_api_secret=SecretStr(SECRET),
            cube_tenant_claim="org",
            cube_page_size=2,
            cube_retries=0,
        ),
        http_client=client,
    )
    assert isinstance(src, CubeSource) and src.name == "cube"
    assert (src.base_url, src.tenant_claim, src.page_size, src.retries) == (
        "http://cube.test",
        "org",
        2,
        0,
    )
    assert len(src.fetch_series(request())) == 4
    assert [r.query["offset"] for r in fake.requests] == [0, 2, 4]
    src.close()
    assert not client.is_closed  # injected: the caller owns it


def test_build_source_owns_the_client_it_builds() -> None:
    src = build_source(
        settings(
            source="cube",
            cube_api_url="http://cube.test",
            cube_api_secret=SecretStr(SECRET),
            cube_timeout_seconds=7,
            workers=6,
        )
    )
    assert isinstance(src, CubeSource)
    client = src._client
    assert client.timeout.read == 7 and client.timeout.connect == 7
    assert SECRET not in repr(src)
    src.close()
    assert client.is_closed
