"""Data quality: missing periods, zero or negative runs, and anomalies vs a rolling baseline.

Every check covers the scanned range: the last ``scan_periods`` periods up to the analysis
period, starting no earlier than the first stored value.

- Gaps: periods with no stored value (the source leaves out periods with no data).
- Runs: consecutive zero values, and (when ``non_negative``) consecutive negative values.
- Anomalies: each value is compared with the median of the ``window`` periods before it
  (trailing, the value itself excluded, at least ``min_baseline`` of them present). The
  robust score is ``(value - median) / scale`` with ``scale = 1.4826 * MAD``; when the MAD
  is (numerically) 0 it falls back to ``1.2533 * mean absolute deviation`` and, for a flat
  baseline, to ``0.001 * |median|`` (at least 1e-9). ``|score| > z_threshold`` flags it.
  "Numerically 0" means below ``1e-6 * |median|`` (at least 1e-12).
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from pydantic import BaseModel, Field

from fulcrum_sync.domain import GRAINS, Grain
from fulcrum_sync.patterns.base import (
    PatternInput,
    PatternResult,
    PatternSettings,
    period_range,
    require,
    to_date,
    values_at,
)

NAME = "data_quality"
VERSION = "1.0.0"
MAX_LISTED = 100
_MAD_SCALE = 1.4826
_MEAN_AD_SCALE = 1.2533
_FLAT_SCALE = 1e-3
_TINY_SCALE = 1e-6


class DataQualitySettings(PatternSettings):
    """Settings of ``data_quality``; None means the grain's default."""

    window: int | None = Field(default=None, ge=3, le=1000)
    z_threshold: float = Field(default=3.5, gt=0)
    non_negative: bool = True
    scan_periods: int | None = Field(default=None, ge=2, le=5000)
    min_baseline: int | None = Field(default=None, ge=2)

    def resolved(self, grain: Grain) -> tuple[int, int, int]:
        """Return ``(window, scan_periods, min_baseline)`` with the grain's defaults filled in."""
        defaults = GRAINS[grain].patterns
        window = self.window or defaults.quality_window
        scan = self.scan_periods or defaults.quality_scan
        return window, scan, min(self.min_baseline or max(3, window // 2), window)


class Run(BaseModel):
    start: date
    end: date
    periods: int


class Anomaly(BaseModel):
    date: date
    value: float
    baseline: float
    scale: float
    score: float
    direction: Literal["up", "down"]


class DataQualityResult(PatternResult):
    """Gaps, zero and negative runs, and anomalies over the scanned range."""

    checked_periods: int
    values_present: int
    status: Literal["ok", "issues"]
    issue_count: int
    missing_periods: int
    analysis_period_missing: bool
    gaps: list[Run]
    zero_values: int
    zero_runs: list[Run]
    negative_values: int
    negative_runs: list[Run]
    scored_periods: int
    anomalies: list[Anomaly]
    latest_is_anomaly: bool
    truncated: bool


def required_history(grain: Grain, settings: dict[str, Any]) -> int:
    """Return how many periods of history the pattern reads with ``settings``."""
    window, scan, _ = DataQualitySettings.model_validate(settings).resolved(grain)
    return scan + window


def data_quality(data: PatternInput, **settings: Any) -> DataQualityResult:
    """Check the series for gaps, zero or negative runs and anomalies.

    :param data: the base series up to the analysis period.
    :param settings: ``window`` (28 days, 12 weeks, 6 months), ``z_threshold`` (3.5),
        ``non_negative`` (True), ``scan_periods`` (90 days, 26 weeks, 12 months) and
        ``min_baseline`` (half the window, at least 3).
    Raises InsufficientDataError when fewer than 2 values fall in the scanned range.
    """
    s = DataQualitySettings.model_validate(settings)
    window, scan, min_baseline = s.resolved(data.grain)
    used = s.model_dump() | {"window": window, "scan_periods": scan, "min_baseline": min_baseline}
    values = data.values
    require(not values.empty, "no values", needed=2)
    scan_start = max(values.index[0], data.shifted(-(scan - 1)))
    full_index = period_range(data.grain, values.index[0], data.period)
    # Plain arrays (positions from ``scan_at`` on are scanned): no Series per check.
    full = values_at(values, full_index)
    scan_at = int(full_index.searchsorted(scan_start))
    scanned, scanned_index = full[scan_at:], full_index[scan_at:]
    missing = np.isnan(scanned)
    present = int((~missing).sum())
    require(
        present >= 2,
        f"need at least 2 values in the scanned range, found {present}",
        needed=2,
        available=present,
    )

    gaps = _runs(missing, scanned_index)
    zero_runs = _runs(scanned == 0, scanned_index)
    negative_runs = _runs(scanned < 0, scanned_index) if s.non_negative else []
    baseline, scale = _baseline(full, window, min_baseline)
    observed = full
    with np.errstate(over="ignore"):
        scores = (observed - baseline) / scale
    in_scan = np.arange(len(full)) >= scan_at
    scored = in_scan & ~np.isnan(observed) & ~np.isnan(baseline)
    flagged = np.flatnonzero(scored & (np.abs(np.nan_to_num(scores, nan=0.0)) > s.z_threshold))
    anomalies = [
        Anomaly(
            date=to_date(full_index[i]),
            value=float(full[i]),
            baseline=float(baseline[i]),
            scale=float(scale[i]),
            score=float(scores[i]),
            direction="up" if scores[i] > 0 else "down",
        )
        for i in flagged
    ]
    negatives = int((scanned < 0).sum()) if s.non_negative else 0
    issue_count = len(gaps) + len(zero_runs) + len(negative_runs) + len(anomalies)
    lists = (gaps, zero_runs, negative_runs, anomalies)
    return DataQualityResult(
        analysis_period=data.analysis_period,
        grain=data.grain,
        window_start=to_date(scan_start),
        window_end=data.analysis_period,
        settings=used,
        checked_periods=len(scanned),
        values_present=present,
        status="issues" if issue_count else "ok",
        issue_count=issue_count,
        missing_periods=int(missing.sum()),
        analysis_period_missing=bool(np.isnan(full[-1])),
        gaps=gaps[-MAX_LISTED:],
        zero_values=int((scanned == 0).sum()),
        zero_runs=zero_runs[-MAX_LISTED:],
        negative_values=negatives,
        negative_runs=negative_runs[-MAX_LISTED:],
        scored_periods=int(scored.sum()),
        anomalies=anomalies[-MAX_LISTED:],
        latest_is_anomaly=bool(len(flagged) and flagged[-1] == len(full) - 1),
        truncated=any(len(items) > MAX_LISTED for items in lists),
    )


def _runs(flags: np.ndarray, index: pd.Index) -> list[Run]:
    """Return the runs of consecutive True values in ``flags`` (``index`` their periods)."""
    if not flags.any():
        return []
    edges = np.diff(np.concatenate(([0], flags.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    return [
        Run(start=to_date(index[a]), end=to_date(index[b]), periods=int(b - a + 1))
        for a, b in zip(starts, ends, strict=True)
    ]


def _baseline(values: np.ndarray, window: int, min_baseline: int) -> tuple[np.ndarray, np.ndarray]:
    """Return each position's trailing median and robust scale (NaN without a baseline)."""
    n = len(values)
    baseline = np.full(n, np.nan)
    scale = np.full(n, np.nan)
    if n <= 1:
        return baseline, scale
    padded = np.concatenate((np.full(window, np.nan), values[:-1]))
    windows = sliding_window_view(padded, window)  # row i holds the `window` values before i
    counts = np.sum(~np.isnan(windows), axis=1)
    usable = counts >= min_baseline
    if not usable.any():
        return baseline, scale
    rows = windows[usable]
    median = _row_medians(rows)
    deviations = np.abs(rows - median[:, None])
    mad = _row_medians(deviations) * _MAD_SCALE
    mean_ad = np.nanmean(deviations, axis=1) * _MEAN_AD_SCALE
    tiny = np.maximum(np.abs(median) * _TINY_SCALE, 1e-12)
    flat = np.maximum(np.abs(median) * _FLAT_SCALE, 1e-9)
    robust = np.where(mad > tiny, mad, np.where(mean_ad > tiny, mean_ad, flat))
    baseline[usable] = median
    scale[usable] = robust
    return baseline, scale


def _row_medians(rows: np.ndarray) -> np.ndarray:
    """``np.nanmedian(rows, axis=1)`` for rows of finite values and NaN, each with a value.

    The same numbers (the two middle values of each row sorted, NaN last, summed and halved,
    as numpy's masked median does) without a masked array: eight times faster.
    """
    ordered = np.sort(rows, axis=1)
    counts = (~np.isnan(rows)).sum(axis=1)
    high = counts // 2
    low = np.where(counts % 2 == 1, high, high - 1)
    at = np.arange(len(rows))
    result: np.ndarray = (ordered[at, low] + ordered[at, high]) / 2.0
    return result
