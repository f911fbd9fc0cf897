"""Known answers for ``forecasting``."""

from __future__ import annotations

import time
import warnings
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from fulcrum_sync.domain import Grain, shift_period
from fulcrum_sync.patterns import PatternInput, get_pattern, run_pattern
from fulcrum_sync.patterns.forecasting import forecasting


def _line(t: int) -> float:
    return 1000.0 + 25.0 * t


def _series(grain: Grain, start: date, n: int, func=_line) -> tuple[list[date], pd.DataFrame]:
    dates = [shift_period(grain, start, i) for i in range(n)]
    return dates, pd.DataFrame({"date": dates, "value": [func(i) for i in range(n)]})


def _true_total(grain: Grain, start: date, window_start: date, window_end: date) -> float:
    """Sum the line over the periods of ``grain`` whose start lies in the window."""
    total, i = 0.0, 0
    while (when := shift_period(grain, start, i)) <= window_end:
        if when >= window_start:
            total += _line(i)
        i += 1
    return total


@pytest.mark.parametrize(
    ("grain", "start", "n", "expected_horizons"),
    [
        (Grain.DAY, date(2025, 4, 1), 135, ["week", "month", "quarter"]),  # ends Wed 2025-08-13
        (Grain.WEEK, date(2025, 1, 6), 32, ["month", "quarter"]),  # ends Mon 2025-08-11
        (Grain.MONTH, date(2024, 8, 1), 13, ["quarter"]),  # ends 2025-08
    ],
)
def test_linear_series_forecast_lands_on_the_line(
    grain: Grain, start: date, n: int, expected_horizons: list[str]
) -> None:
    dates, frame = _series(grain, start, n)
    result = forecasting(PatternInput(grain, dates[-1], frame))

    assert [h.horizon for h in result.horizons] == expected_horizons
    for horizon in result.horizons:
        expected = _true_total(grain, start, horizon.start, horizon.end)
        assert horizon.forecast == pytest.approx(expected, rel=0.01), horizon.horizon
        assert horizon.lower <= horizon.forecast <= horizon.upper
        assert horizon.remaining_periods > 0
        assert horizon.status == "no_target" and horizon.target is None
    for point in result.points:
        assert point.forecast == pytest.approx(_line(_index(grain, start, point.date)), rel=0.01)


def _index(grain: Grain, start: date, when: date) -> int:
    i = 0
    while shift_period(grain, start, i) < when:
        i += 1
    return i


def test_day_horizons_split_actuals_and_remaining_periods() -> None:
    dates, frame = _series(Grain.DAY, date(2025, 4, 1), 135)  # last: Wed 2025-08-13
    result = forecasting(PatternInput("day", dates[-1], frame))
    week, month, quarter = result.horizons

    assert (week.start, week.end, week.periods, week.remaining_periods) == (
        date(2025, 8, 11),
        date(2025, 8, 17),
        7,
        4,
    )
    assert week.actual_to_date == pytest.approx(sum(_line(i) for i in (132, 133, 134)))
    assert (month.start, month.end, month.remaining_periods) == (
        date(2025, 8, 1),
        date(2025, 8, 31),
        18,
    )
    assert (quarter.start, quarter.end, quarter.periods) == (
        date(2025, 7, 1),
        date(2025, 9, 30),
        92,
    )
    assert len(result.points) == 48  # to 2025-09-30
    assert result.model is not None and result.model.seasonal_periods == 7


def test_pacing_against_targets() -> None:
    dates, frame = _series(Grain.DAY, date(2025, 4, 1), 135)
    future = [dates[0] + timedelta(days=i) for i in range(200)]
    on_line = pd.DataFrame({"date": future, "value": [_line(i) for i in range(200)]})
    too_high = on_line.assign(value=on_line["value"] * 2)

    met = forecasting(PatternInput("day", dates[-1], frame, targets=on_line))
    missed = forecasting(PatternInput("day", dates[-1], frame, targets=too_high))

    for horizon in met.horizons:
        assert horizon.status == "on_track"
        assert horizon.forecast_vs_target_pct == pytest.approx(0.0, abs=0.01)
        assert horizon.pace_pct == pytest.approx(0.0, abs=1e-9)
    for horizon in missed.horizons:
        assert horizon.status == "off_track"
        assert horizon.target is not None
        assert horizon.projected_gap == pytest.approx(horizon.target - horizon.forecast)
        assert horizon.probability_on_target == 0.0
        assert horizon.pace_pct == pytest.approx(-0.5)


def test_partial_targets_give_no_target() -> None:
    dates, frame = _series(Grain.DAY, date(2025, 4, 1), 135)
    targets = pd.DataFrame({"date": dates, "value": 1.0})  # none after the analysis day
    result = forecasting(PatternInput("day", dates[-1], frame, targets=targets))

    assert all(h.target is None and h.status == "no_target" for h in result.horizons)


def test_month_grain_on_last_month_of_quarter_needs_no_model() -> None:
    dates, frame = _series(Grain.MONTH, date(2024, 10, 1), 12)  # ends 2025-09
    result = forecasting(PatternInput("month", dates[-1], frame))

    (quarter,) = result.horizons
    assert quarter.remaining_periods == 0
    assert quarter.forecast == quarter.actual_to_date == pytest.approx(sum(map(_line, (9, 10, 11))))
    assert result.model is None and result.points == []


def test_noisy_series_has_an_interval_and_no_warnings() -> None:
    rng = np.random.default_rng(3)
    dates, frame = _series(
        Grain.DAY, date(2025, 1, 1), 200, lambda t: 500 + 50 * np.sin(t) + rng.normal(0, 20)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = forecasting(PatternInput("day", dates[-1], frame))

    quarter = result.horizons[-1]
    assert quarter.lower < quarter.forecast < quarter.upper
    assert result.model is not None and result.model.history_periods == 180
    assert result.window_start == dates[-180]


def test_non_negative_clips_a_falling_line() -> None:
    dates, frame = _series(Grain.DAY, date(2025, 7, 1), 30, lambda t: 300.0 - 10 * t)
    clipped = forecasting(PatternInput("day", dates[-1], frame))
    free = forecasting(PatternInput("day", dates[-1], frame), non_negative=False)

    assert min(p.forecast for p in clipped.points) == 0.0
    assert min(p.forecast for p in free.points) < 0.0


def test_gaps_are_interpolated() -> None:
    dates, frame = _series(Grain.DAY, date(2025, 4, 1), 135)
    result = forecasting(PatternInput("day", dates[-1], frame.drop(index=[50, 51, 100])))

    assert result.model is not None and result.model.filled_gaps == 3
    assert result.horizons[-1].forecast == pytest.approx(
        _true_total(Grain.DAY, date(2025, 4, 1), date(2025, 7, 1), date(2025, 9, 30)) - _line(100),
        rel=0.01,
    )


def test_short_history_is_insufficient_and_min_history_setting_applies() -> None:
    dates, frame = _series(Grain.DAY, date(2025, 7, 1), 10)
    spec = get_pattern("forecasting")

    short = run_pattern(spec, PatternInput("day", dates[-1], frame))
    allowed = run_pattern(spec, PatternInput("day", dates[-1], frame), {"min_history": 5})

    assert short.status == "skipped"
    assert short.error == {
        "type": "insufficient_data",
        "message": "need 14 periods of history, found 10",
        "needed": 14,
        "available": 10,
    }
    assert allowed.status == "succeeded"
    assert allowed.result is not None
    assert allowed.result["model"]["seasonal_periods"] is None  # fewer than 2 weeks


def test_a_call_is_fast() -> None:
    dates, frame = _series(Grain.DAY, date(2025, 1, 1), 365)
    data = PatternInput("day", dates[-1], frame)
    spec = get_pattern("forecasting")
    run_pattern(spec, data)
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        assert run_pattern(spec, data).status == "succeeded"
        timings.append(time.perf_counter() - started)

    assert sorted(timings)[2] < 0.25  # typically ~30 ms; generous for a busy machine


def test_reruns_are_identical() -> None:
    rng = np.random.default_rng(5)
    dates, frame = _series(Grain.DAY, date(2025, 1, 1), 120, lambda t: 100 + rng.normal(0, 5))
    spec = get_pattern("forecasting")
    data = PatternInput("day", dates[-1], frame)

    assert run_pattern(spec, data).result == run_pattern(spec, data).result
