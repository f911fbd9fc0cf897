"""Grains, periods, windows, contexts and run keys (SPEC §1, §3)."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fulcrum_sync.domain import (
    DEFAULT_LOOKBACK,
    Grain,
    InputError,
    MetricContext,
    PatternContext,
    SyncType,
    Window,
    compute_window,
    format_period,
    iter_periods,
    last_complete_period,
    parse_period,
    pattern_run_key,
    period_end,
    period_start,
    shift_period,
    sync_run_key,
)

grains = st.sampled_from(list(Grain))
days = st.dates(min_value=date(1990, 1, 1), max_value=date(2090, 12, 31))
part = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-", min_size=1
)


# --------------------------------------------------------------------------- grains


@pytest.mark.parametrize(
    ("text", "grain"),
    [
        ("day", Grain.DAY),
        ("daily", Grain.DAY),
        ("week", Grain.WEEK),
        ("weekly", Grain.WEEK),
        ("month", Grain.MONTH),
        ("monthly", Grain.MONTH),
        (" Weekly ", Grain.WEEK),
        ("DAY", Grain.DAY),
        (Grain.MONTH, Grain.MONTH),
    ],
)
def test_grain_parse_accepts_names_and_aliases(text: str, grain: Grain) -> None:
    assert Grain.parse(text) is grain


def test_grain_stores_the_short_form() -> None:
    assert [g.value for g in Grain] == ["day", "week", "month", "quarter"]
    assert Grain.parse("monthly").value == "month"
    assert Grain.parse("Quarterly").value == "quarter"


@pytest.mark.parametrize("bad", ["fortnight", "", "days", "quarters", "year"])
def test_grain_parse_error_names_the_value_and_the_valid_grains(bad: str) -> None:
    with pytest.raises(InputError) as info:
        Grain.parse(bad)
    message = str(info.value)
    assert repr(bad) in message
    for valid in ("day", "week", "month", "quarter"):
        assert valid in message
    assert "\n" not in message


# --------------------------------------------------------------------------- periods


@given(grains, days)
def test_any_date_inside_a_period_normalizes_to_its_start(grain: Grain, day: date) -> None:
    start = period_start(grain, day)
    assert start <= day <= period_end(grain, start)
    assert period_start(grain, start) == start
    assert parse_period(grain, day.isoformat()) == start
    for inside in (start, period_end(grain, start), day):
        assert period_start(grain, inside) == start


@given(grains, days)
def test_period_starts_have_the_grain_shape(grain: Grain, day: date) -> None:
    start = period_start(grain, day)
    if grain is Grain.WEEK:
        assert start.weekday() == 0  # Monday
        assert (period_end(grain, start) - start).days == 6
    elif grain is Grain.MONTH:
        assert start.day == 1
        assert (period_end(grain, start) + timedelta(days=1)).day == 1
    elif grain is Grain.QUARTER:
        assert start.day == 1 and start.month in (1, 4, 7, 10)
        assert 90 <= (period_end(grain, start) - start).days + 1 <= 92
    else:
        assert period_end(grain, start) == start


@given(grains, days)
def test_format_and_parse_agree(grain: Grain, day: date) -> None:
    start = period_start(grain, day)
    text = format_period(grain, start)
    if grain is Grain.WEEK:
        # "2025-W28 (2025-07-07)": the ISO week, and the Monday it resolved to.
        week, monday = text.split(" ")
        assert monday == f"({start.isoformat()})"
        assert parse_period(grain, week) == start
    else:
        assert parse_period(grain, text) == start
    assert parse_period(grain, start.isoformat()) == start


@given(days)
def test_iso_week_string_round_trip(day: date) -> None:
    iso = day.isocalendar()
    assert parse_period(Grain.WEEK, f"{iso.year}-W{iso.week:02d}") == period_start(Grain.WEEK, day)


@given(days)
def test_month_string_round_trip(day: date) -> None:
    text = f"{day.year}-{day.month:02d}"
    assert parse_period(Grain.MONTH, text) == day.replace(day=1)


@given(grains, days, st.integers(min_value=-500, max_value=500))
def test_shift_period_is_invertible(grain: Grain, day: date, n: int) -> None:
    start = period_start(grain, day)
    shifted = shift_period(grain, start, n)
    assert period_start(grain, shifted) == shifted
    assert shift_period(grain, shifted, -n) == start
    assert (shifted > start) == (n > 0) and (shifted == start) == (n == 0)


@given(grains, days, st.integers(min_value=0, max_value=200))
def test_iter_periods_is_contiguous(grain: Grain, day: date, span: int) -> None:
    end = period_end(grain, shift_period(grain, day, span))
    periods = list(iter_periods(grain, day, end))
    assert periods[0] == period_start(grain, day)
    assert periods[-1] == period_start(grain, end)
    assert len(periods) == span + 1
    for a, b in itertools.pairwise(periods):
        assert period_end(grain, a) + timedelta(days=1) == b


def test_iter_periods_of_an_empty_range() -> None:
    assert list(iter_periods(Grain.DAY, date(2025, 7, 2), date(2025, 7, 1))) == []


@pytest.mark.parametrize(
    "day", [date(2026, 12, 28) + timedelta(days=i) for i in range(7)], ids=lambda d: d.isoformat()
)
def test_iso_year_edge_2026_w53(day: date) -> None:
    assert period_start(Grain.WEEK, day) == date(2026, 12, 28)
    assert parse_period(Grain.WEEK, day.isoformat()) == date(2026, 12, 28)
    assert format_period(Grain.WEEK, period_start(Grain.WEEK, day)) == "2026-W53 (2026-12-28)"
    assert parse_period(Grain.WEEK, "2026-W53") == date(2026, 12, 28)


@pytest.mark.parametrize(
    ("text", "monday"),
    [
        ("2025-W28", date(2025, 7, 7)),  # the old %Y-W%W called this week 2025-W27
        ("2025-W27", date(2025, 6, 30)),
        ("2025-W01", date(2024, 12, 30)),
        ("2025-w1", date(2024, 12, 30)),
        ("2020-W53", date(2020, 12, 28)),
    ],
)
def test_iso_week_strings(text: str, monday: date) -> None:
    assert parse_period(Grain.WEEK, text) == monday
    assert monday.weekday() == 0


def test_week_of_2024_12_30_is_2025_w01() -> None:
    assert format_period(Grain.WEEK, date(2024, 12, 30)) == "2025-W01 (2024-12-30)"


@pytest.mark.parametrize(
    ("grain", "text", "start"),
    [
        (Grain.MONTH, "2025-07", date(2025, 7, 1)),
        (Grain.MONTH, "2025-07-31", date(2025, 7, 1)),
        (Grain.MONTH, "2024-02-29", date(2024, 2, 1)),
        (Grain.DAY, "2025-07-13", date(2025, 7, 13)),
        (Grain.WEEK, "2025-07-13", date(2025, 7, 7)),  # a Sunday: its week's Monday
        (Grain.WEEK, " 2025-W28 ", date(2025, 7, 7)),
    ],
)
def test_parse_period_examples(grain: Grain, text: str, start: date) -> None:
    assert parse_period(grain, text) == start


@pytest.mark.parametrize(
    ("grain", "text"),
    [
        (Grain.DAY, "2025-W28"),
        (Grain.DAY, "2025-07"),
        (Grain.WEEK, "2025-07"),
        (Grain.MONTH, "2025-W28"),  # a week can straddle two months
        (Grain.WEEK, "2025-W53"),  # 2025 has 52 ISO weeks
        (Grain.MONTH, "2025-13"),
        (Grain.DAY, "2025-02-30"),
        (Grain.DAY, "yesterday"),
        (Grain.DAY, ""),
    ],
)
def test_parse_period_errors_name_the_value(grain: Grain, text: str) -> None:
    with pytest.raises(InputError) as info:
        parse_period(grain, text)
    assert repr(text) in str(info.value)


def test_month_periods() -> None:
    assert period_end(Grain.MONTH, date(2025, 7, 1)) == date(2025, 7, 31)
    assert period_end(Grain.MONTH, date(2024, 2, 10)) == date(2024, 2, 29)
    assert shift_period(Grain.MONTH, date(2025, 7, 1), -7) == date(2024, 12, 1)
    assert shift_period(Grain.MONTH, date(2025, 12, 15), 1) == date(2026, 1, 1)
    assert format_period(Grain.MONTH, date(2025, 7, 1)) == "2025-07"


# --------------------------------------------------------------------------- last complete period


@pytest.mark.parametrize(
    ("now", "day", "week", "month"),
    [
        # Monday 00:00 UTC: yesterday, last week (which just ended), last month.
        (
            datetime(2025, 7, 14, 0, 0, tzinfo=UTC),
            date(2025, 7, 13),
            date(2025, 7, 7),
            date(2025, 6, 1),
        ),
        # One microsecond earlier it is still Sunday: the week before is the last complete one.
        (
            datetime(2025, 7, 13, 23, 59, 59, 999999, tzinfo=UTC),
            date(2025, 7, 12),
            date(2025, 6, 30),
            date(2025, 6, 1),
        ),
        # The 1st of a month at 00:00: last month is complete.
        (
            datetime(2025, 8, 1, 0, 0, tzinfo=UTC),
            date(2025, 7, 31),
            date(2025, 7, 21),
            date(2025, 7, 1),
        ),
        # New Year across an ISO year boundary.
        (
            datetime(2027, 1, 4, 10, 0, tzinfo=UTC),
            date(2027, 1, 3),
            date(2026, 12, 28),
            date(2026, 12, 1),
        ),
        # A naive datetime is taken as UTC.
        (datetime(2025, 7, 14, 10, 0), date(2025, 7, 13), date(2025, 7, 7), date(2025, 6, 1)),
    ],
)
def test_last_complete_period(now: datetime, day: date, week: date, month: date) -> None:
    assert last_complete_period(Grain.DAY, now) == day
    assert last_complete_period(Grain.WEEK, now) == week
    assert last_complete_period(Grain.MONTH, now) == month


def test_last_complete_period_converts_other_zones_to_utc() -> None:
    # 01:30 on Monday 2025-09-01 in UTC+2 is still Sunday 2025-08-31 23:30 UTC.
    plus_two = timezone(timedelta(hours=2))
    now = datetime(2025, 9, 1, 1, 30, tzinfo=plus_two)
    assert last_complete_period(Grain.DAY, now) == date(2025, 8, 30)
    assert last_complete_period(Grain.WEEK, now) == date(2025, 8, 18)
    assert last_complete_period(Grain.MONTH, now) == date(2025, 7, 1)
    # 20:00 on Sunday 2025-08-31 in UTC-5 is already Monday 01:00 UTC.
    minus_five = timezone(timedelta(hours=-5))
    now = datetime(2025, 8, 31, 20, 0, tzinfo=minus_five)
    assert last_complete_period(Grain.DAY, now) == date(2025, 8, 31)
    assert last_complete_period(Grain.WEEK, now) == date(2025, 8, 25)
    assert last_complete_period(Grain.MONTH, now) == date(2025, 8, 1)


@given(grains, st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2090, 1, 1)))
def test_last_complete_period_ended_before_now(grain: Grain, naive: datetime) -> None:
    now = naive.replace(tzinfo=UTC)
    last = last_complete_period(grain, now)
    assert period_end(grain, last) < now.date()
    assert shift_period(grain, last, 1) == period_start(grain, now.date())


def test_last_complete_period_defaults_to_now() -> None:
    before = datetime.now(UTC).date()
    last = last_complete_period(Grain.DAY)
    after = datetime.now(UTC).date()
    assert last in {before - timedelta(days=1), after - timedelta(days=1)}


# --------------------------------------------------------------------------- windows


HISTORY = date(2000, 1, 1)


@pytest.mark.parametrize(
    ("grain", "sync_type", "periods"),
    [
        (Grain.DAY, SyncType.FULL, 365),
        (Grain.DAY, SyncType.INCREMENTAL, 90),
        (Grain.WEEK, SyncType.FULL, 104),
        (Grain.WEEK, SyncType.INCREMENTAL, 24),
        (Grain.MONTH, SyncType.FULL, 60),
        (Grain.MONTH, SyncType.INCREMENTAL, 12),
    ],
)
def test_compute_window_table(grain: Grain, sync_type: SyncType, periods: int) -> None:
    assert DEFAULT_LOOKBACK[grain][sync_type] == periods
    period = parse_period(grain, "2027-03-10")
    window = compute_window(grain, period, sync_type, HISTORY)
    assert window.end == period_end(grain, period)
    assert len(list(iter_periods(grain, window.start, window.end))) == periods
    assert window.start == period_start(grain, window.start)


def test_compute_window_examples() -> None:
    window = compute_window(Grain.DAY, date(2026, 7, 13), SyncType.INCREMENTAL, HISTORY)
    assert window == Window(date(2026, 4, 15), date(2026, 7, 13))
    assert window.to_string() == "2026-04-15..2026-07-13"
    window = compute_window(Grain.MONTH, date(2027, 6, 1), SyncType.INCREMENTAL, HISTORY)
    assert window == Window(date(2026, 7, 1), date(2027, 6, 30))


@pytest.mark.parametrize(
    ("grain", "period", "start"),
    [
        (Grain.DAY, date(2025, 7, 13), date(2025, 7, 1)),
        (Grain.WEEK, date(2025, 7, 7), date(2025, 6, 30)),  # the week of the history start
        (Grain.MONTH, date(2025, 9, 1), date(2025, 7, 1)),
    ],
)
def test_compute_window_clamps_to_history_start(grain: Grain, period: date, start: date) -> None:
    for sync_type in SyncType:
        window = compute_window(grain, period, sync_type, date(2025, 7, 1))
        assert window.start == start
        assert window.end == period_end(grain, period)


def test_compute_window_takes_a_lookback_table() -> None:
    lookback = {g: {SyncType.FULL: 3, SyncType.INCREMENTAL: 1} for g in Grain}
    window = compute_window(Grain.WEEK, date(2026, 1, 5), SyncType.FULL, HISTORY, lookback)
    assert window == Window(date(2025, 12, 22), date(2026, 1, 11))
    window = compute_window(Grain.WEEK, date(2026, 1, 5), SyncType.INCREMENTAL, HISTORY, lookback)
    assert window == Window(date(2026, 1, 5), date(2026, 1, 11))


# --------------------------------------------------------------------------- contexts


@given(part, part)
def test_metric_context_round_trip(tenant: str, metric: str) -> None:
    ctx = MetricContext(tenant, metric)
    assert MetricContext.from_string(ctx.to_string()) == ctx
    assert str(ctx) == f"{tenant}::{metric}"


@given(part, part, part)
def test_pattern_context_round_trip(tenant: str, metric: str, pattern: str) -> None:
    ctx = PatternContext(tenant, metric, pattern)
    assert PatternContext.from_string(ctx.to_string()) == ctx
    assert ctx.metric_context == MetricContext(tenant, metric)
    assert ctx.to_string().startswith(ctx.metric_context.to_string() + "::")


def test_context_examples() -> None:
    assert MetricContext.from_string("acme::new_revenue") == MetricContext("acme", "new_revenue")
    assert PatternContext.from_string("acme::new_revenue::performance_status").pattern == (
        "performance_status"
    )


@pytest.mark.parametrize(
    "text",
    ["acme::", "::x", "a::b::c::d", "a b::c", "", "acme", "acme:::x", "acme::new_revenue\n"],
)
def test_metric_context_errors(text: str) -> None:
    with pytest.raises(InputError) as info:
        MetricContext.from_string(text)
    message = str(info.value)
    assert repr(text) in message
    assert "acme::new_revenue" in message or "may hold only" in message


@pytest.mark.parametrize(
    "text", ["acme::", "::x", "a::b::c::d", "a b::c::d", "", "a::b", "a::b::", "a::b:: c"]
)
def test_pattern_context_errors(text: str) -> None:
    with pytest.raises(InputError, match="invalid context"):
        PatternContext.from_string(text)


@given(st.text(max_size=30))
def test_from_string_accepts_only_well_formed_text(text: str) -> None:
    try:
        ctx = MetricContext.from_string(text)
    except InputError:
        return
    assert ctx.to_string() == text


# --------------------------------------------------------------------------- run keys


def test_run_keys() -> None:
    ctx = PatternContext("acme", "new_revenue", "performance_status")
    assert (
        sync_run_key(Grain.DAY, date(2025, 7, 13), ctx.metric_context)
        == "sync:day:2025-07-13:acme::new_revenue"
    )
    assert (
        pattern_run_key(Grain.WEEK, date(2025, 7, 7), ctx)
        == "pattern:week:2025-07-07:acme::new_revenue::performance_status"
    )
    assert (
        pattern_run_key(Grain.MONTH, date(2025, 7, 1), ctx, "region")
        == "pattern:month:2025-07-01:acme::new_revenue::performance_status:region"
    )


@given(grains, days, part, part)
def test_sync_run_key_carries_the_period_start(
    grain: Grain, day: date, tenant: str, metric: str
) -> None:
    start = period_start(grain, day)
    key = sync_run_key(grain, start, MetricContext(tenant, metric))
    kind, grain_text, period_text, rest = key.split(":", 3)
    assert (kind, grain_text, period_text) == ("sync", grain.value, start.isoformat())
    assert MetricContext.from_string(rest) == MetricContext(tenant, metric)


def test_a_run_that_counts_its_contexts_reports_as_one_that_keeps_them() -> None:
    """``sync`` in JSON log mode keeps only the failed contexts (issue 19): the outcome and
    the totals are those of the run that kept every one."""
    from fulcrum_sync.domain import ContextResult, MetricContext, SeriesResult, SyncRequest
    from fulcrum_sync.domain.results import SyncRunResult

    request = SyncRequest(grain=Grain.DAY, period=date(2025, 7, 1))
    window = Window(date(2025, 6, 1), date(2025, 7, 1))

    def ctx(name: str, status: str, dependency: bool = False) -> ContextResult:
        res = ContextResult(MetricContext("acme", name), Grain.DAY, request.period, "k", status)
        res.base = SeriesResult(None, SyncType.INCREMENTAL, window, inserted=2, updated=1)
        res.dependency_failure = dependency
        return res

    results = [ctx("a", "succeeded"), ctx("b", "skipped"), ctx("c", "failed", dependency=True)]
    kept, counted = SyncRunResult("r", request), SyncRunResult("r", request)
    for res in results:
        kept.contexts.append(res)
        if res.status == "failed":
            counted.contexts.append(res)
        else:
            counted.tally.add(res)
    for run in (kept, counted):
        assert run.outcome == "partial"
        assert run.context_count == 3
        assert run.status_counts() == {"succeeded": 1, "skipped": 1, "failed": 1}
        assert (run.rows_stored, run.rows_skipped) == (9, 0)
        assert [c.context.metric for c in run.failed] == ["c"]
    only_failed = SyncRunResult("r", request, contexts=[ctx("c", "failed", dependency=True)])
    only_failed.tally.add(ctx("b", "skipped"))
    assert only_failed.outcome == "failed"  # every context it tried failed: the source is down
