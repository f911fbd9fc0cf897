"""Historical performance: growth, acceleration, trend, streaks and records over a window.

The window is the analysis period and the ``periods`` periods before it, so it holds up to
``periods`` period-over-period growth rates. Growth is ``(v - v_prev) / |v_prev|``; a
missing period or a zero predecessor leaves that rate None.

Trend: the slope of a least-squares line through the window's values, divided by the mean
absolute value, is ``up`` above ``flat_tolerance``, ``down`` below its negative and ``flat``
in between. The same is computed for the window's first and second halves (they share the
middle period); ``changed`` says whether their directions differ.

Streak: counted back from the analysis period over all the data given (not only the
window): ``length`` is the number of consecutive period-over-period changes with the same
sign (rises ``up``, falls ``down``, no change ``flat``), ``periods`` the number of values
in the run (``length + 1``). A series rising every period for ``n`` values has
``length == n - 1`` and ``periods == n``. A missing period ends the streak.

Records: the highest and lowest values in the window and the rank of the latest value
(1 = highest).
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from fulcrum_sync.domain import GRAINS, Grain
from fulcrum_sync.patterns.base import (
    PatternInput,
    PatternResult,
    PatternSettings,
    num,
    period_range,
    require,
    to_date,
    values_at,
)

NAME = "historical_performance"
VERSION = "1.0.0"

Direction = Literal["up", "down", "flat"]


class HistoricalPerformanceSettings(PatternSettings):
    """Settings of ``historical_performance``."""

    periods: int = Field(default=12, ge=2, le=1000)
    flat_tolerance: float = Field(default=0.01, ge=0)


class GrowthPoint(BaseModel):
    date: date
    value: float | None
    growth: float | None


class Trend(BaseModel):
    direction: Direction | None
    slope: float | None
    relative_slope: float | None
    first_half_direction: Direction | None
    second_half_direction: Direction | None
    changed: bool | None


class Streak(BaseModel):
    direction: Direction | None
    length: int
    periods: int
    start: date
    at_data_start: bool


class Record(BaseModel):
    date: date
    value: float


class Records(BaseModel):
    high: Record
    low: Record
    latest_rank: int
    ranked_values: int
    is_record_high: bool
    is_record_low: bool


class HistoricalPerformanceResult(PatternResult):
    """Growth, trend, streak and records of the window ending at the analysis period."""

    periods: int
    latest_value: float
    latest_growth: float | None
    average_growth: float | None
    compound_growth: float | None
    acceleration: float | None
    average_acceleration: float | None
    trend: Trend
    streak: Streak
    records: Records
    points: list[GrowthPoint]


def required_history(grain: Grain, settings: dict[str, Any]) -> int:
    """Return how many periods of history the pattern reads with ``settings``."""
    periods = int(settings.get("periods", HistoricalPerformanceSettings().periods))
    return max(periods + 1, GRAINS[grain].patterns.streak_lookback)


def historical_performance(data: PatternInput, **settings: Any) -> HistoricalPerformanceResult:
    """Describe growth, trend, streak and records over the last ``periods`` periods.

    :param data: the base series up to the analysis period.
    :param settings: ``periods`` (12) and ``flat_tolerance`` (0.01).
    Raises InsufficientDataError unless the analysis period and one earlier period in the
    window have values.
    """
    s = HistoricalPerformanceSettings.model_validate(settings)
    values = data.values
    index = period_range(data.grain, data.shifted(-s.periods), data.period)
    # Plain arrays over the window (a Series per step cost more than the arithmetic).
    window = values_at(values, index)
    present_at = np.flatnonzero(~np.isnan(window))
    present = window[present_at]
    require(
        data.period in values.index,
        f"no value for the analysis period {data.analysis_period}",
        needed=2,
        available=len(present),
    )
    require(
        len(present) >= 2,
        f"need at least 2 values in the {s.periods + 1}-period window, found {len(present)}",
        needed=2,
        available=len(present),
    )
    previous = np.concatenate(([np.nan], window[:-1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        growth = (window - previous) / np.abs(previous)
    growth[(previous == 0) | np.isnan(window) | np.isnan(previous)] = np.nan
    rates = growth[~np.isnan(growth)]
    accelerations = np.diff(growth)
    accelerations = accelerations[~np.isnan(accelerations)]
    first = float(present[0])
    latest = float(present[-1])
    spans = len(window) - int(present_at[0]) - 1
    compound = num((latest / first) ** (1 / spans) - 1) if first > 0 and latest > 0 else None
    dates = index.date.tolist()

    return HistoricalPerformanceResult(
        analysis_period=data.analysis_period,
        grain=data.grain,
        window_start=dates[0],
        window_end=data.analysis_period,
        settings=s.model_dump(),
        periods=s.periods,
        latest_value=latest,
        latest_growth=num(growth[-1]),
        average_growth=num(rates.sum() / len(rates)) if len(rates) else None,  # as pandas
        compound_growth=compound,
        acceleration=num(growth[-1] - growth[-2]) if len(growth) > 1 else None,
        average_acceleration=(
            num(accelerations.sum() / len(accelerations)) if len(accelerations) else None
        ),
        trend=_trend(window, s.flat_tolerance),
        streak=_streak(data),
        records=_records(present, [dates[i] for i in present_at], latest),
        points=[
            GrowthPoint.model_construct(date=when, value=num(v), growth=num(g))
            for when, v, g in zip(dates, window.tolist(), growth.tolist(), strict=True)
        ],
    )


def _direction(
    values: np.ndarray, tolerance: float
) -> tuple[Direction | None, float | None, float | None]:
    """Return the direction, slope and relative slope of a line fitted to ``values``."""
    positions = np.arange(len(values), dtype=float)
    mask = ~np.isnan(values)
    if mask.sum() < 2:
        return None, None, None
    y = values[mask]
    slope = float(np.polyfit(positions[mask], y, 1)[0])
    scale = float(np.mean(np.abs(y)))
    relative = slope / scale if scale > 0 else 0.0
    if relative > tolerance:
        return "up", slope, relative
    if relative < -tolerance:
        return "down", slope, relative
    return "flat", slope, relative


def _trend(window: np.ndarray, tolerance: float) -> Trend:
    direction, slope, relative = _direction(window, tolerance)
    middle = len(window) // 2
    first, _, _ = _direction(window[: middle + 1], tolerance)
    second, _, _ = _direction(window[middle:], tolerance)
    changed = first != second if first is not None and second is not None else None
    return Trend(
        direction=direction,
        slope=num(slope),
        relative_slope=num(relative),
        first_half_direction=first,
        second_half_direction=second,
        changed=changed,
    )


def _streak(data: PatternInput) -> Streak:
    values = data.values
    index = period_range(data.grain, values.index[0], data.period)
    signs = np.sign(np.concatenate(([np.nan], np.diff(values_at(values, index)))))
    length = 0
    direction: Direction | None = None
    sign = signs[-1]
    if not np.isnan(sign):
        direction = "up" if sign > 0 else "down" if sign < 0 else "flat"
        for step in signs[::-1]:
            if step != sign:
                break
            length += 1
    start = index[len(index) - 1 - length]
    return Streak(
        direction=direction,
        length=length,
        periods=length + 1,
        start=to_date(start),
        at_data_start=bool(length > 0 and start == index[0]),
    )


def _records(present: np.ndarray, dates: list[date], latest: float) -> Records:
    high_at = int(np.argmax(present))  # the first of equal values, as ``idxmax``
    low_at = int(np.argmin(present))
    return Records(
        high=Record(date=dates[high_at], value=float(present[high_at])),
        low=Record(date=dates[low_at], value=float(present[low_at])),
        latest_rank=int((present > latest).sum()) + 1,
        ranked_values=len(present),
        is_record_high=bool(latest >= present.max()),
        is_record_low=bool(latest <= present.min()),
    )
