"""Periods are never in the future and every accepted one computes (issue #16)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fulcrum_sync.config import Settings
from fulcrum_sync.domain import (
    BackfillRequest,
    Grain,
    InputError,
    SyncType,
    check_not_after,
    check_period,
    compute_window,
    last_complete_period,
    parse_period,
    period_end,
)

NOW = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)  # a Saturday
HISTORY = date(2025, 7, 1)


@pytest.mark.parametrize(
    ("grain", "last", "next_one"),
    [
        (Grain.DAY, "2026-11-27", "2026-11-28"),
        (Grain.WEEK, "2026-W47", "2026-W48"),
        (Grain.MONTH, "2026-10", "2026-11"),
    ],
)
def test_the_last_complete_period_is_accepted_the_next_refused(
    grain: Grain, last: str, next_one: str
) -> None:
    check_period(grain, parse_period(grain, last), HISTORY, NOW)
    with pytest.raises(InputError) as info:
        check_period(grain, parse_period(grain, next_one), HISTORY, NOW)
    message = str(info.value)
    assert "is not over yet" in message and "today is 2026-11-28 UTC" in message
    assert f"the last complete {grain.value} is {last}" in message


@pytest.mark.parametrize(
    ("grain", "text"),
    [
        (Grain.DAY, "9999-12-31"),
        (Grain.WEEK, "9999-12-31"),
        (Grain.MONTH, "9999-12-31"),
        (Grain.MONTH, "9999-12"),
        (Grain.WEEK, "9999-W52"),
        (Grain.DAY, "2099-01-01"),
    ],
)
def test_far_future_periods_are_refused_naming_the_last_complete(grain: Grain, text: str) -> None:
    with pytest.raises(InputError, match="the last complete"):
        check_not_after(grain, parse_period(grain, text), NOW)


@pytest.mark.parametrize(
    "text", ["\u0662\u0660\u0662\u0665-\u0660\u0667-\u0660\u0661", "2025-07-01x", "0000-01-01"]
)
def test_only_ascii_digits_and_real_dates_parse(text: str) -> None:
    with pytest.raises(InputError, match="invalid period"):
        parse_period(Grain.DAY, text)


@given(
    grain=st.sampled_from(list(Grain)),
    day=st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)),
    form=st.sampled_from(["date", "month", "week"]),
)
def test_any_accepted_period_has_a_window_and_an_end(grain: Grain, day: date, form: str) -> None:
    iso = day.isocalendar()
    text = {
        "date": day.isoformat(),
        "month": f"{day.year:04d}-{day.month:02d}",
        "week": f"{iso.year:04d}-W{iso.week:02d}",
    }[form]
    try:
        period = parse_period(grain, text)
        check_period(grain, period, HISTORY, NOW)
    except InputError:
        return
    assert HISTORY.replace(day=1) <= period <= last_complete_period(grain, NOW)
    assert period_end(grain, period) < NOW.date()
    for sync_type in SyncType:
        window = compute_window(grain, period, sync_type, HISTORY)
        assert window.start <= period <= window.end


def test_a_lookback_longer_than_the_calendar_clamps_to_the_history_start() -> None:
    lookback = {g: {t: 10**9 for t in SyncType} for g in Grain}
    for grain in Grain:
        window = compute_window(grain, date(2025, 9, 1), SyncType.FULL, HISTORY, lookback)
        assert window.start == parse_period(grain, HISTORY.isoformat())


def test_backfill_refuses_an_end_that_is_not_over() -> None:
    request = BackfillRequest(Grain.DAY, date(2025, 7, 1), date(2026, 11, 28))
    with pytest.raises(InputError, match="--end 2026-11-28 is not over yet"):
        request.validate(HISTORY, NOW)
    BackfillRequest(Grain.DAY, date(2025, 7, 1), date(2026, 11, 27)).validate(HISTORY, NOW)


def test_the_today_setting_moves_the_clock() -> None:
    settings = Settings(_env_file=None, today=date(2025, 8, 5))  # type: ignore[call-arg]
    assert settings.now() == datetime(2025, 8, 5, tzinfo=UTC)
    assert last_complete_period(Grain.MONTH, settings.now()) == date(2025, 7, 1)
    assert Settings(_env_file=None).today is None  # type: ignore[call-arg]


@pytest.mark.parametrize("value", ["1899-12-31", "9001-01-01", "not-a-date"])
def test_the_today_setting_is_bounded(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from fulcrum_sync.config import load_settings

    monkeypatch.setenv("FULCRUM_SYNC_TODAY", value)
    with pytest.raises(InputError, match="FULCRUM_SYNC_TODAY"):
        load_settings()
