"""Known answers for ``historical_performance``."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fulcrum_sync.domain import Grain, shift_period
from fulcrum_sync.patterns import PatternInput, get_pattern, run_pattern
from fulcrum_sync.patterns.historical_performance import historical_performance

START = date(2025, 1, 1)


def _monthly(values: list[float | None], start: date = START) -> PatternInput:
    dates = [shift_period(Grain.MONTH, start, i) for i in range(len(values))]
    rows = [(d, v) for d, v in zip(dates, values, strict=True) if v is not None]
    frame = pd.DataFrame(rows, columns=["date", "value"])
    return PatternInput(Grain.MONTH, dates[-1], frame)


def test_rising_ten_percent_gives_growth_point_one_and_a_full_rising_streak() -> None:
    values = [100 * 1.1**i for i in range(13)]  # 13 values, 12 rises
    result = historical_performance(_monthly(values))

    assert result.latest_growth == pytest.approx(0.1)
    assert result.average_growth == pytest.approx(0.1)
    assert result.compound_growth == pytest.approx(0.1)
    assert result.acceleration == pytest.approx(0.0, abs=1e-12)
    assert result.average_acceleration == pytest.approx(0.0, abs=1e-12)
    assert all(p.growth == pytest.approx(0.1) for p in result.points[1:])
    # The streak counts rises: a series of n rising values has n - 1 rises in n periods.
    assert result.streak.direction == "up"
    assert result.streak.length == len(values) - 1 == 12
    assert result.streak.periods == len(values) == 13
    assert result.streak.start == START
    assert result.streak.at_data_start is True
    assert result.trend.direction == "up"
    assert result.trend.changed is False
    assert result.records.is_record_high is True
    assert result.records.latest_rank == 1
    assert result.records.ranked_values == 13
    assert result.records.low.date == START
    assert result.records.low.value == pytest.approx(100.0)
    assert result.window_start == START
    assert result.window_end == date(2026, 1, 1)


def test_streak_counts_all_data_given_while_growth_uses_the_window() -> None:
    values = [100 * 1.1**i for i in range(20)]
    result = historical_performance(_monthly(values), periods=6)

    assert len(result.points) == 7
    assert result.streak.length == 19
    assert result.records.ranked_values == 7
    assert result.settings == {"periods": 6, "flat_tolerance": 0.01}


def test_falling_series_has_down_streak_and_record_low() -> None:
    result = historical_performance(_monthly([200, 180, 150, 120, 100]))

    assert result.streak.direction == "down"
    assert result.streak.length == 4
    assert result.trend.direction == "down"
    assert result.records.is_record_low is True
    assert result.records.latest_rank == 5
    assert result.latest_growth == pytest.approx(100 / 120 - 1)


def test_streak_ends_at_the_latest_change_of_direction() -> None:
    result = historical_performance(_monthly([10, 20, 30, 25, 26, 27]))

    assert result.streak.direction == "up"
    assert result.streak.length == 2
    assert result.streak.start == date(2025, 4, 1)
    assert result.streak.at_data_start is False


def test_flat_series_is_flat() -> None:
    result = historical_performance(_monthly([50.0] * 8))

    assert result.trend.direction == "flat"
    assert result.streak.direction == "flat"
    assert result.streak.length == 7
    assert result.average_growth == 0.0
    assert result.records.latest_rank == 1


def test_trend_change_is_reported_between_halves() -> None:
    rising_then_falling = [10, 20, 30, 40, 50, 40, 30, 20, 10]
    result = historical_performance(_monthly(rising_then_falling), periods=8)

    assert result.trend.first_half_direction == "up"
    assert result.trend.second_half_direction == "down"
    assert result.trend.changed is True


def test_a_gap_leaves_growth_none_and_breaks_the_streak() -> None:
    result = historical_performance(_monthly([100, 110, None, 130, 140]))

    growth = {p.date: p.growth for p in result.points}
    assert growth[date(2025, 3, 1)] is None
    assert growth[date(2025, 4, 1)] is None
    assert growth[date(2025, 5, 1)] == pytest.approx(10 / 130)
    assert result.streak.length == 1
    assert result.average_growth == pytest.approx((0.1 + 10 / 130) / 2)


def test_zero_predecessor_gives_no_growth_rather_than_infinity() -> None:
    result = historical_performance(_monthly([0, 5, 10]))

    assert result.points[1].growth is None
    assert result.latest_growth == pytest.approx(1.0)
    assert result.compound_growth is None


def test_periods_setting_from_tenant_changes_the_window() -> None:
    spec = get_pattern("historical_performance")
    data = _monthly([100 * 1.1**i for i in range(20)])

    default = run_pattern(spec, data)
    short = run_pattern(spec, data, {"periods": 3})

    assert default.result is not None and short.result is not None
    assert len(default.result["points"]) == 13
    assert len(short.result["points"]) == 4
    assert short.window_start == date(2026, 5, 1)
    assert short.result["settings"]["periods"] == 3


def test_day_grain_window_uses_days() -> None:
    dates = [date(2025, 7, 1) + timedelta(days=i) for i in range(30)]
    frame = pd.DataFrame({"date": dates, "value": [float(i + 1) for i in range(30)]})
    result = historical_performance(PatternInput("daily", dates[-1], frame))

    assert result.window_start == date(2025, 7, 18)
    assert result.streak.length == 29


@settings(max_examples=40, deadline=None)
@given(
    rate=st.floats(min_value=-0.5, max_value=2.0).filter(lambda r: abs(r) > 1e-6),
    n=st.integers(min_value=2, max_value=30),
)
def test_property_constant_growth_rate(rate: float, n: int) -> None:
    values = [100 * (1 + rate) ** i for i in range(n)]
    result = historical_performance(_monthly(values))

    assert result.average_growth == pytest.approx(rate, rel=1e-6, abs=1e-9)
    assert result.streak.length == n - 1
    assert result.streak.direction == ("up" if rate > 0 else "down")
