"""The Cube source under stress: breaker, 429 throttle, concurrency cap, retry budget, query limit.

Single-threaded cases run on a fake clock (nothing sleeps); the cases about workers run
threads against tests/cube_server.py, in-process or as a real HTTP server.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from cube_server import SECRET, FakeCube, Reply, series_rows
from pydantic import SecretStr
from test_source_cube import METRIC, REGION, WINDOW, FakeTime, policy, request

from fulcrum_sync.catalog import FilterDef
from fulcrum_sync.config import Settings
from fulcrum_sync.domain import SourceDownError, SourceError, Window
from fulcrum_sync.sources import CubeSource, SourceGuard, build_source
from fulcrum_sync.sources.base import FetchRequest
from fulcrum_sync.sources.cube_protocol import build_query

GRAIN = request().grain


def four_days(query: dict[str, Any], claims: dict[str, Any]) -> list[dict[str, Any]]:
    days = ["2025-07-01", "2025-07-02", "2025-07-03", "2025-07-04"]
    return series_rows(query, [(d, "1.00", None) for d in days])


def source(
    fake: FakeCube,
    clock: FakeTime | None = None,
    *,
    url: str = "http://cube.test",
    guard: SourceGuard | None = None,
    **options: Any,
) -> CubeSource:
    """A Cube source on ``fake`` (in-process unless ``url`` is a served one)."""
    client = httpx.Client(transport=fake.transport()) if url == "http://cube.test" else None
    timing: dict[str, Any] = {"sleep": clock.sleep, "clock": clock.clock} if clock else {}
    retry = {k: options.pop(k) for k in list(options) if k in policy.__code__.co_varnames}
    if guard is None and clock is not None:
        guard = SourceGuard(f"Cube at {url}", clock=clock.clock, sleep=clock.sleep)
    return CubeSource(
        url,
        SecretStr(SECRET),
        client=client or httpx.Client(timeout=5),
        guard=guard,
        close_client=client is None,
        policy=policy(**{"retries": 2, "backoff_initial": 0.01, **retry}),
        **{**timing, **options},
    )


def in_threads(work: list[Any], fn: Any) -> tuple[list[Any], list[BaseException]]:
    """Run ``fn(item)`` for each item in its own thread; return results and errors."""
    results: list[Any] = []
    errors: list[BaseException] = []

    def run(item: Any) -> None:
        try:
            results.append(fn(item))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(item,)) for item in work]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results, errors


# --------------------------------------------------------------------------- the breaker


def test_exhausted_retries_open_the_breaker_and_later_requests_send_nothing() -> None:
    fake, clock = FakeCube(four_days), FakeTime()
    fake.down = True
    src = source(fake, clock)
    with pytest.raises(SourceDownError, match=r"acme::new_revenue \(day\): .*after 3 attempts"):
        src.fetch_series(request())
    assert len(fake.requests) == 3
    other = FetchRequest(2, "initech", METRIC, GRAIN, WINDOW, REGION)
    with pytest.raises(SourceDownError) as info:
        src.fetch_series(other)
    message = str(info.value)
    assert message.startswith(
        "Cube at http://cube.test: initech::new_revenue (day, region): not sent: "
        "Cube at http://cube.test is down since "
    )
    assert "failed after 3 attempts; last error: connection failed" in message
    assert len(fake.requests) == 3  # nothing more was sent
    stats = src.stats()
    assert (stats.breaker_opened, stats.requests, stats.retries) == (1, 3, 2)
    assert stats.down_since is not None and "after 3 attempts" in (stats.down_cause or "")


def test_a_4xx_or_an_answer_never_opens_the_breaker() -> None:
    fake, clock = FakeCube(four_days), FakeTime()
    fake.script.extend([Reply(400, {"type": "UserError", "error": "bad"}), Reply(500, {})])
    src = source(fake, clock)
    with pytest.raises(SourceError) as info:
        src.fetch_series(request())
    assert not isinstance(info.value, SourceDownError)
    assert len(src.fetch_series(request())) == 4  # one 500, retried
    assert src.stats().breaker_opened == 0 and src.stats().down_since is None


def test_a_worker_sleeping_between_retries_wakes_when_another_opens_the_breaker() -> None:
    fake = FakeCube(four_days)
    fake.script.append(Reply(503, {"error": "busy"}, headers={"Retry-After": "30"}))
    src = source(fake, retries=1)  # real time: sleeps wait on the guard
    started = time.monotonic()
    outcome: list[BaseException] = []

    def sleep_then_fail() -> None:
        try:
            src.fetch_series(request())
        except BaseException as exc:
            outcome.append(exc)

    sleeper = threading.Thread(target=sleep_then_fail)
    sleeper.start()
    while not fake.requests:  # the sleeper got its 503 and sleeps 30 s
        time.sleep(0.005)
    fake.down = True
    with pytest.raises(SourceDownError, match="after 2 attempts"):
        src.fetch_series(FetchRequest(2, "initech", METRIC, GRAIN, WINDOW))
    sleeper.join(10)
    assert not sleeper.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], SourceDownError)
    assert "not sent: Cube at http://cube.test is down since" in str(outcome[0])
    assert time.monotonic() - started < 5  # not the 30 s Retry-After
    assert len(fake.requests) == 3  # the sleeper sent nothing more


def test_a_long_run_rides_out_a_blip_through_the_half_open_trial() -> None:
    fake = FakeCube(four_days)
    fake.down = True
    guard = SourceGuard(long_run=True, reset_seconds=0.3)
    src = source(fake, guard=guard, retries=1)

    def fetch(tenant: str) -> int:
        return len(src.fetch_series(FetchRequest(1, tenant, METRIC, GRAIN, WINDOW)))

    fake.back_when = lambda: guard.stats().breaker_opened > 0  # back once it opened
    results, errors = in_threads(["acme", "initech", "globex"], fetch)
    assert errors == [] and results == [4, 4, 4]
    stats = src.stats()
    assert stats.breaker_opened == 1 and stats.down_since is None  # closed again


def test_a_long_run_gives_up_when_the_trial_fails_too() -> None:
    fake, clock = FakeCube(four_days), FakeTime()
    fake.down = True
    guard = SourceGuard(
        "Cube at http://cube.test",
        long_run=True,
        reset_seconds=60,
        clock=clock.clock,
        sleep=clock.sleep,
    )
    src = source(fake, clock, guard=guard, retries=1)
    start = clock.now
    with pytest.raises(SourceDownError, match="after 2 attempts"):
        src.fetch_series(request())
    assert len(fake.requests) == 4  # one cycle, 60 s, one trial cycle
    assert 60 <= clock.now - start < 62
    with pytest.raises(SourceDownError, match=r"not sent: Cube at http://cube\.test is down since"):
        src.fetch_series(request())
    assert len(fake.requests) == 4


# --------------------------------------------------------------------------- 429 and concurrency


def test_a_429_pauses_every_worker_until_retry_after() -> None:
    fake = FakeCube(four_days)
    # A long pause (2 s) so the others surely start inside it, however loaded the machine.
    fake.script.append(Reply(429, {"error": "Too Many Requests"}, headers={"Retry-After": "2"}))
    with fake.serve() as url:
        src = source(fake, url=url)
        started = time.monotonic()

        def fetch(i: int) -> int:
            # The others start well inside the pause the 429 began (from 0.15 s of its 2 s).
            while i and not (fake.pauses and time.monotonic() > fake.pauses[0][0] + 0.15):
                time.sleep(0.002)
            return len(src.fetch_series(FetchRequest(i, f"t{i}", METRIC, GRAIN, WINDOW)))

        results, errors = in_threads(list(range(6)), fetch)
        src.close()
    assert errors == [] and results == [4] * 6
    assert len(fake.pauses) == 1 and len(fake.requests) == 7
    assert fake.requests_during_pauses(grace=0.05) == 0
    assert time.monotonic() - started >= 2
    stats = src.stats()
    assert stats.throttled == 1 and stats.throttled_waits >= 1 and stats.retries == 0


def test_a_429_without_retry_after_backs_off_and_is_not_a_retry() -> None:
    fake, clock = FakeCube(four_days), FakeTime()
    fake.script.extend([Reply(429, {"error": "slow down"})] * 2)
    src = source(fake, clock, retries=0)
    assert len(src.fetch_series(request())) == 4
    assert clock.sleeps == [1.0, 2.0]  # doubling pause for the whole source
    stats = src.stats()
    assert (stats.throttled, stats.throttled_waits, stats.retries) == (2, 2, 0)


def test_max_concurrency_caps_requests_in_flight_across_workers() -> None:
    def slow(query: dict[str, Any], claims: dict[str, Any]) -> list[dict[str, Any]]:
        time.sleep(0.05)
        return four_days(query, claims)

    fake = FakeCube(slow)
    with fake.serve() as url:
        src = source(fake, url=url, guard=SourceGuard(max_concurrency=2))
        results, errors = in_threads(
            list(range(8)),
            lambda i: len(src.fetch_series(FetchRequest(i, f"t{i}", METRIC, GRAIN, WINDOW))),
        )
        src.close()
    assert errors == [] and results == [4] * 8
    assert fake.max_in_flight == 2


# --------------------------------------------------------------------------- retry budget


def test_the_retry_budget_is_shared_and_spent_means_down() -> None:
    fake, clock = FakeCube(four_days), FakeTime()
    guard = SourceGuard(retry_budget=3, clock=clock.clock, sleep=clock.sleep)
    src = source(fake, clock, guard=guard, retries=5)
    fake.script.extend([Reply(500, {"error": "boom"})] * 2)
    assert len(src.fetch_series(request())) == 4  # 2 retries spent
    fake.script.extend([Reply(502, text="Bad Gateway")] * 3)
    with pytest.raises(SourceDownError) as info:
        src.fetch_series(request())
    assert "after 2 attempts" in str(info.value)
    assert "retry budget is spent: 3" in str(info.value)
    assert src.stats().retries == 3


# --------------------------------------------------------------------------- Cube's query limit


def many_rows(query: dict[str, Any], claims: dict[str, Any]) -> list[dict[str, Any]]:
    start = date(2025, 1, 1)
    points = [
        ((start + timedelta(days=d)).isoformat(), f"{d}.{s:03d}", f"s{s:03d}")
        for d in range(100)
        for s in range(120)
    ]
    return series_rows(query, points)


def test_a_page_over_cubes_query_limit_halves_the_page_size_once_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake, clock = FakeCube(many_rows, query_limit=5000), FakeTime()
    src = source(fake, clock)
    window = Window(date(2025, 1, 1), date(2025, 4, 10))
    with caplog.at_level(logging.WARNING):
        assert len(src.fetch_series(request(REGION, window))) == 12_000
        assert len(src.fetch_series(request(REGION, window))) == 12_000
    limits = [(r.query["limit"], r.query["offset"]) for r in fake.requests]
    assert limits[:4] == [(10_000, 0), (5000, 0), (5000, 5000), (5000, 10_000)]
    assert limits[4:] == [(5000, 0), (5000, 5000), (5000, 10_000)]  # remembered
    warnings = [r.getMessage() for r in caplog.records if "PAGE_SIZE" in r.getMessage()]
    assert len(warnings) == 1 and "FULCRUM_SYNC_CUBE_PAGE_SIZE=5000" in warnings[0]
    assert src.page_size == 5000 and src.stats().page_size == 5000
    assert src.stats().retries == 0  # not treated as transient


def test_a_query_limit_below_the_floor_is_an_error_naming_both_settings() -> None:
    fake, clock = FakeCube(many_rows, query_limit=50), FakeTime()
    src = source(fake, clock, page_size=200)
    with pytest.raises(SourceError) as info:
        src.fetch_series(request(REGION))
    assert not isinstance(info.value, SourceDownError)
    assert "query limit has been exceeded" in str(info.value)
    assert "CUBEJS_DB_QUERY_LIMIT" in str(info.value) and "CUBE_PAGE_SIZE" in str(info.value)
    assert [r.query["limit"] for r in fake.requests] == [200, 100]


# --------------------------------------------------------------------------- tenant filters


def test_tenant_filters_go_into_every_query() -> None:
    filters = (
        FilterDef(member="orders.tenant_id", operator="equals", values=("7",)),
        FilterDef(member="orders.deleted_at", operator="notSet"),
    )
    req = FetchRequest(7, "acme", METRIC, GRAIN, WINDOW, REGION, filters)
    assert build_query(req, limit=10)["filters"] == [
        {"member": "orders.tenant_id", "operator": "equals", "values": ["7"]},
        {"member": "orders.deleted_at", "operator": "notSet"},
    ]
    assert "filters" not in build_query(request(), limit=10)


def test_build_source_wires_the_guard_settings() -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        source="cube",
        cube_api_url="http://cube.test",
        cube_api_secret=SecretStr(SECRET),
        cube_max_concurrency=3,
        cube_retry_budget=7,
        cube_breaker_reset_seconds=12.5,
        cube_wait_deadline_seconds=90,
    )
    for long_run in (False, True):
        src = build_source(settings, long_run=long_run)
        assert isinstance(src, CubeSource)
        guard = src.guard
        assert (guard.max_concurrency, guard.retry_budget, guard.reset_seconds) == (3, 7, 12.5)
        assert guard.long_run is long_run and guard.max_pause == 90
        src.close()
