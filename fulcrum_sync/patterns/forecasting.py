"""Forecasting: the totals of the current week, month and quarter, with intervals and pacing.

The model is statsmodels' Holt-Winters ``ExponentialSmoothing``: additive trend (damped when
``damped_trend``) and, when the history covers two full seasons, additive seasonality of
``seasonal_periods`` (7 for days, 12 for months, none for weeks). It is fitted once on at
most ``max_history`` periods ending at the analysis period (gaps are interpolated), with
``least_squares`` and no brute-force start, which keeps a fit to a few tens of ms.

A horizon's total is the actuals from its start to the analysis period plus the forecasts
for its remaining periods. The interval comes from ``simulations`` simulated paths of the
fitted model (seeded, so a re-run gives the same numbers): the ``confidence`` central
quantiles of the simulated totals. With ``non_negative`` forecasts are clipped at zero.

Horizons are the spans coarser than the grain that contain the analysis period: week, month
and quarter for days; month and quarter for weeks (a week belongs to the span holding its
Monday); quarter for months. Pacing compares each total with the sum of the targets of the
span's periods (None unless every period has one) using the ``performance_status`` rule.

Convergence warnings of statsmodels are silenced process-wide on import (a filter on
``ConvergenceWarning`` only); numpy floating-point warnings are silenced per call with
``np.errstate``, which is thread-safe.
"""

from __future__ import annotations

import functools
import warnings
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from fulcrum_sync.collector import importing
from fulcrum_sync.domain import GRAINS, Grain
from fulcrum_sync.patterns.base import (
    PatternInput,
    PatternResult,
    PatternSettings,
    horizons,
    num,
    pct_change,
    period_range,
    require,
    to_date,
    values_at,
)
from fulcrum_sync.patterns.performance_status import Status, classify
from fulcrum_sync.patterns.scipy_notes import notes_skipped


@functools.cache
def _exponential_smoothing() -> Any:
    """Import statsmodels on first use (it costs seconds; most commands never forecast),
    with garbage collection held (``collector.importing``): it lives as long as the process;
    and without scipy rewriting docstrings (``patterns.scipy_notes``).

    Once: adding the warnings filter again on every fit reset every warning registry.
    """
    with importing(), notes_skipped():
        from statsmodels.tools.sm_exceptions import ConvergenceWarning
        from statsmodels.tsa.holtwinters import ExponentialSmoothing

    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    return ExponentialSmoothing


NAME = "forecasting"
VERSION = "1.0.0"
_SEED = 20250701


class ForecastingSettings(PatternSettings):
    """Settings of ``forecasting``; None means the grain's default."""

    max_history: int = Field(default=180, ge=4, le=5000)
    min_history: int | None = Field(default=None, ge=4)
    seasonal_periods: int | None = Field(default=None, ge=0, le=366)
    damped_trend: bool = False
    confidence: float = Field(default=0.8, gt=0, lt=1)
    simulations: int = Field(default=500, ge=50, le=20_000)
    non_negative: bool = True
    threshold: float = Field(default=0.05, ge=0, lt=1)
    higher_is_better: bool = True

    def resolved(self, grain: Grain) -> tuple[int, int]:
        """Return ``(min_history, seasonal_periods)`` with the grain's defaults filled in."""
        defaults = GRAINS[grain].patterns
        min_history = self.min_history or defaults.forecast_min_history
        season = (
            defaults.forecast_season if self.seasonal_periods is None else self.seasonal_periods
        )
        return min(min_history, self.max_history), season


class ForecastPoint(BaseModel):
    date: date
    forecast: float
    lower: float
    upper: float


class HorizonForecast(BaseModel):
    horizon: str
    start: date
    end: date
    periods: int
    remaining_periods: int
    actual_to_date: float
    forecast: float
    lower: float
    upper: float
    target: float | None
    target_to_date: float | None
    pace_pct: float | None
    forecast_vs_target_pct: float | None
    projected_gap: float | None
    probability_on_target: float | None
    status: Status


class ModelInfo(BaseModel):
    method: str
    trend: str
    damped_trend: bool
    seasonal_periods: int | None
    history_periods: int
    filled_gaps: int
    smoothing_level: float | None
    smoothing_trend: float | None
    smoothing_seasonal: float | None
    residual_std: float | None


class ForecastingResult(PatternResult):
    """Forecast totals per horizon with intervals and pacing, and the per-period forecast."""

    latest_value: float
    confidence: float
    horizons: list[HorizonForecast]
    points: list[ForecastPoint]
    model: ModelInfo | None


def required_history(grain: Grain, settings: dict[str, Any]) -> int:
    """Return how many periods of history the pattern reads with ``settings``."""
    return int(ForecastingSettings.model_validate(settings).max_history)


def forecasting(data: PatternInput, **settings: Any) -> ForecastingResult:
    """Forecast the totals of the spans containing the analysis period, with pacing.

    :param data: the base series up to the analysis period and, for pacing, the targets
        of the spans' periods (future ones included).
    :param settings: ``max_history`` (180), ``min_history`` (14 days, 8 weeks, 6 months),
        ``seasonal_periods`` (7 days, none for weeks, 12 months; 0 turns it off),
        ``damped_trend`` (False), ``confidence`` (0.8), ``simulations`` (500),
        ``non_negative`` (True), ``threshold`` (0.05), ``higher_is_better`` (True).
    Raises InsufficientDataError without a value for the analysis period or with less
    than ``min_history`` periods of history.
    """
    s = ForecastingSettings.model_validate(settings)
    min_history, season = s.resolved(data.grain)
    values = data.values
    require(
        data.period in values.index,
        f"no value for the analysis period {data.analysis_period}",
        needed=min_history,
        available=len(values),
    )
    start = max(values.index[0], data.shifted(-(s.max_history - 1)))
    raw = values.reindex(period_range(data.grain, start, data.period))
    require(
        len(raw) >= min_history,
        f"need {min_history} periods of history, found {len(raw)}",
        needed=min_history,
        available=len(raw),
    )
    spans = _spans(data.grain, data.analysis_period)
    steps = max(len(future) for _, _, future in spans.values())
    future_index = period_range(data.grain, data.shifted(1), data.shifted(max(steps, 1)))[:steps]
    point, paths, model = _forecast(raw, steps, season, s)

    alpha = (1 - s.confidence) / 2
    out: list[HorizonForecast] = []
    for name, (window, past, future) in spans.items():
        actual = float(np.nan_to_num(values_at(values, past), nan=0.0).sum())
        k = len(future)
        total = actual + float(point[:k].sum())
        totals = actual + paths[:k].sum(axis=0)
        lower, upper = np.quantile(totals, [alpha, 1 - alpha]) if k else (total, total)
        out.append(_pace(name, window, past, future, actual, total, lower, upper, totals, data, s))
    quantiles = np.quantile(paths, [alpha, 1 - alpha], axis=1) if steps else np.empty((2, 0))
    return ForecastingResult(
        analysis_period=data.analysis_period,
        grain=data.grain,
        window_start=to_date(raw.index[0]),
        window_end=data.analysis_period,
        settings=s.model_dump() | {"min_history": min_history, "seasonal_periods": season or None},
        latest_value=float(values[data.period]),
        confidence=s.confidence,
        horizons=out,
        points=[  # built without validation: plain floats and dates, up to a quarter of days
            ForecastPoint.model_construct(
                date=when,
                forecast=f,
                lower=min(lo, f),
                upper=max(hi, f),
            )
            for when, f, lo, hi in zip(
                future_index.date.tolist(),
                point[:steps].tolist(),
                quantiles[0].tolist(),
                quantiles[1].tolist(),
                strict=True,
            )
        ],
        model=model,
    )


@functools.lru_cache(maxsize=512)
def _spans(grain: Grain, period: date) -> dict[str, tuple[tuple[date, date], pd.Index, pd.Index]]:
    """Return each horizon's window and its periods up to and after the analysis period.

    The same for every context analysed for ``period`` (kept: indexes are immutable; the
    caller reads the dict and never changes it).
    """
    spans = {}
    at = pd.Timestamp(period)
    for name, window in horizons(grain, period).items():
        index = period_range(grain, window.start, window.end)
        index = index[index >= pd.Timestamp(window.start)]
        spans[name] = ((window.start, window.end), index[index <= at], index[index > at])
    return spans


def _forecast(
    raw: pd.Series, steps: int, season: int, s: ForecastingSettings
) -> tuple[np.ndarray, np.ndarray, ModelInfo | None]:
    """Fit the model once; return the point forecast, simulated paths (steps x n) and info."""
    if steps == 0:
        return np.empty(0), np.empty((0, s.simulations)), None
    history = raw.interpolate(limit_direction="both").to_numpy(dtype=float)
    seasonal = season if season >= 2 and len(history) >= 2 * season else None
    with np.errstate(all="ignore"):
        fitted = _exponential_smoothing()(
            history,
            trend="add",
            damped_trend=s.damped_trend,
            seasonal="add" if seasonal else None,
            seasonal_periods=seasonal,
            initialization_method="estimated",
        ).fit(use_brute=False, method="least_squares")
        point = np.asarray(fitted.forecast(steps), dtype=float)
        paths = np.asarray(
            fitted.simulate(
                steps,
                repetitions=s.simulations,
                error="add",
                rng=np.random.default_rng(_SEED),
            ),
            dtype=float,
        ).reshape(steps, s.simulations)
    if s.non_negative:
        point, paths = np.maximum(point, 0.0), np.maximum(paths, 0.0)
    params = fitted.params
    residuals = np.asarray(fitted.resid, dtype=float)
    info = ModelInfo(
        method="holt_winters",
        trend="add",
        damped_trend=s.damped_trend,
        seasonal_periods=seasonal,
        history_periods=len(history),
        filled_gaps=int(raw.isna().sum()),
        smoothing_level=num(params.get("smoothing_level")),
        smoothing_trend=num(params.get("smoothing_trend")),
        smoothing_seasonal=num(params.get("smoothing_seasonal")) if seasonal else None,
        residual_std=num(np.std(residuals)) if len(residuals) else None,
    )
    return point, paths, info


def _pace(
    name: str,
    window: tuple[date, date],
    past: pd.Index,
    future: pd.Index,
    actual: float,
    total: float,
    lower: float,
    upper: float,
    totals: np.ndarray,
    data: PatternInput,
    s: ForecastingSettings,
) -> HorizonForecast:
    """Build one horizon's forecast and its pacing against the span's targets."""
    past_targets = values_at(data.target_values, past)
    targets = np.concatenate((past_targets, values_at(data.target_values, future)))
    target = float(targets.sum()) if len(targets) and not np.isnan(targets).any() else None
    target_to_date = float(past_targets.sum()) if target is not None else None
    probability = None
    if target is not None and len(totals):
        hit = totals >= target if s.higher_is_better else totals <= target
        probability = float(np.mean(hit))
    return HorizonForecast(
        horizon=name,
        start=window[0],
        end=window[1],
        periods=len(targets),
        remaining_periods=len(future),
        actual_to_date=actual,
        forecast=total,
        lower=min(float(lower), total),
        upper=max(float(upper), total),
        target=target,
        target_to_date=target_to_date,
        pace_pct=pct_change(actual, target_to_date),
        forecast_vs_target_pct=pct_change(total, target),
        projected_gap=target - total if target is not None else None,
        probability_on_target=probability,
        status=classify(total, target, s.threshold, s.higher_is_better),
    )


def forward_end(grain: Grain, period: date) -> date:
    """Return the last day whose targets the forecast for ``period`` can use."""
    return max(window.end for window in horizons(grain, period).values())
