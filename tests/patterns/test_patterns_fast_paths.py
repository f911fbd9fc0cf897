"""Issue 19's faster pattern paths give the answers the slower ones gave.

- Inputs sliced from frames normalised once per preload equal inputs normalised per key, and
  every pattern returns the same result on both (day, week and month; duplicates, gaps,
  non-finite values, stray dates inside a period).
- ``dimension_analysis`` without pandas per call equals its previous pandas version (kept
  here as the reference) on generated slices, ties and absent slices included.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from fulcrum_sync.domain import Grain, Window, period_end, period_start, shift_period
from fulcrum_sync.patterns import PatternInput, list_patterns, run_pattern
from fulcrum_sync.patterns.base import normalise
from fulcrum_sync.patterns.dimension_analysis import DimensionAnalysisSettings, dimension_analysis
from fulcrum_sync.services.patterns.inputs import _between

START = date(2025, 1, 1)


def _raw(grain: Grain, seed: int, dimensional: bool) -> pd.DataFrame:
    """Raw stored-like rows: sorted by date, with duplicates, NaN/inf and stray dates."""
    rng = np.random.default_rng(seed)
    days = 400 if grain is Grain.DAY else 900
    rows: list[tuple[Any, ...]] = []
    for i in range(days):
        when = START + timedelta(days=i)
        if grain is not Grain.DAY and rng.random() > 0.2:
            continue  # a few stray dates per period, snapped to the period's start
        if rng.random() < 0.05:
            continue  # a gap
        slices = ("a", "b", "c", None) if dimensional else (None,)
        for s in slices:
            if dimensional and s is None and rng.random() > 0.1:
                continue
            value = (
                float(rng.integers(0, 50)) if rng.random() > 0.03 else rng.choice([np.nan, np.inf])
            )
            rows.append((when, s, value) if dimensional else (when, value))
            if rng.random() < 0.03:  # a duplicate key: the last one wins
                rows.append((when, s, value + 1) if dimensional else (when, value + 1))
    columns = ["date", "slice", "value"] if dimensional else ["date", "value"]
    return pd.DataFrame(rows, columns=columns)


def _in_window(frame: pd.DataFrame, window: Window) -> pd.DataFrame:
    """What the store returns for a window: the raw rows whose date lies inside it."""
    dates = pd.to_datetime(frame["date"])
    keep = (dates >= pd.Timestamp(window.start)) & (dates <= pd.Timestamp(window.end))
    return frame[keep].reset_index(drop=True)


def _window(grain: Grain, period: date, periods: int) -> Window:
    return Window(shift_period(grain, period, -(periods - 1)), period_end(grain, period))


@pytest.mark.parametrize("grain", list(Grain))
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_inputs_sliced_from_a_preload_equal_inputs_normalised_per_key(grain: Grain, seed: int):
    series_raw, dims_raw = _raw(grain, seed, False), _raw(grain, seed + 10, True)
    targets_raw = _raw(grain, seed + 20, False)
    wide = {
        "series": normalise(series_raw, grain, ("date", "value")),
        "dimension": normalise(dims_raw, grain, ("date", "slice", "value")),
        "targets": normalise(targets_raw, grain, ("date", "value")),
    }
    last = period_start(grain, START + timedelta(days=380))
    for back in (0, 1, 2, 5):
        period = shift_period(grain, last, -back)
        for periods in (2, 8, 30):
            window = _window(grain, period, periods)
            targets_window = _window(grain, shift_period(grain, period, 3), periods + 3)
            slow = PatternInput(
                grain,
                period,
                _in_window(series_raw, window),
                dimension="region",
                dimension_series=_in_window(dims_raw, window),
                targets=_in_window(targets_raw, targets_window),
            )
            fast = PatternInput.from_normalised(
                grain,
                period,
                _between(wide["series"], wide["series"]["date"].to_numpy(), window),
                dimension="region",
                dimension_series=_between(
                    wide["dimension"], wide["dimension"]["date"].to_numpy(), window
                ),
                targets=_between(
                    wide["targets"], wide["targets"]["date"].to_numpy(), targets_window
                ),
                cut=False,  # as ContextData builds them: the window ends with the period
            )
            for name in ("series", "dimension_series", "targets"):
                pd.testing.assert_frame_equal(
                    getattr(slow, name).reset_index(drop=True),
                    getattr(fast, name).reset_index(drop=True),
                )
            assert slow.analysis_period == fast.analysis_period
            for spec in list_patterns():
                if not spec.supports(grain):
                    continue
                a, b = run_pattern(spec, slow), run_pattern(spec, fast)
                assert (a.status, a.result, a.error) == (b.status, b.result, b.error), spec.name


# --------------------------------------------------------------------------- dimension_analysis


def _reference(data: PatternInput, **settings: Any) -> dict[str, Any]:
    """``dimension_analysis`` as it was computed with pandas before issue 19 (core fields)."""
    s = DimensionAnalysisSettings.model_validate(settings)
    frame = data.dimension_series
    assert frame is not None

    def slice_values(when: pd.Timestamp) -> pd.Series:
        rows = frame[frame["date"] == when]
        return rows.groupby("slice", sort=True)["value"].sum()

    current, prior = slice_values(data.period), slice_values(data.shifted(-1))
    table = pd.DataFrame({"value": current, "prior_value": prior}).fillna(0.0)
    total, prior_total = float(table["value"].sum()), float(table["prior_value"].sum())
    table["rank"] = current.rank(method="min", ascending=False).astype(int).reindex(table.index)
    table["prior_rank"] = prior.rank(method="min", ascending=False).astype(int).reindex(table.index)
    table = table.sort_values(["value", "prior_value"], ascending=False, kind="stable")
    slices = [
        (
            str(name),
            float(row["value"]),
            float(row["prior_value"]),
            None if pd.isna(row["rank"]) else int(row["rank"]),
            None if pd.isna(row["prior_rank"]) else int(row["prior_rank"]),
        )
        for name, row in table.iterrows()
    ]
    return {
        "total": total,
        "prior_total": prior_total,
        "slices": slices[: s.max_slices],
        "new": sorted(str(n) for n in current.index.difference(prior.index)),
        "gone": sorted(str(n) for n in prior.index.difference(current.index)),
    }


@pytest.mark.parametrize("seed", range(40))
def test_dimension_analysis_equals_its_pandas_version(seed: int) -> None:
    rng = np.random.default_rng(seed)
    period, prior = date(2025, 7, 7), date(2025, 6, 30)
    names = [f"s{i:02d}" for i in range(int(rng.integers(1, 14)))]
    rows = []
    for when in (prior, period):
        for name in names:
            if rng.random() < 0.2:
                continue  # absent from this period
            value = float(rng.choice([0.0, 1.0, 2.0, 5.0, rng.integers(-5, 100)]))  # ties
            rows.append((when, name, value))
    rows += [(prior, names[0], 3.0), (period, names[-1], 4.0)]  # both periods have one
    frame = pd.DataFrame(rows, columns=["date", "slice", "value"])
    base = pd.DataFrame({"date": [prior, period], "value": [1.0, 1.0]})
    data = PatternInput("week", period, base, dimension="d", dimension_series=frame)
    settings = {"max_slices": int(rng.integers(1, 20)), "top_n": 3}

    result = dimension_analysis(data, **settings)
    expected = _reference(data, **settings)

    assert (result.total, result.prior_total) == (expected["total"], expected["prior_total"])
    got = [(st.slice, st.value, st.prior_value, st.rank, st.prior_rank) for st in result.slices]
    assert got == expected["slices"]
    assert (result.new_slices, result.gone_slices) == (expected["new"], expected["gone"])


@pytest.mark.parametrize("seed", range(20))
def test_data_quality_row_medians_equal_numpys_nanmedian(seed: int) -> None:
    from fulcrum_sync.patterns.data_quality import _row_medians

    rng = np.random.default_rng(seed)
    window = int(rng.choice([3, 6, 12, 28]))
    rows = np.round(rng.normal(100, 40, size=(200, window)), int(rng.integers(0, 3)))
    rows[rng.random(rows.shape) < 0.2] = np.nan
    rows = rows[(~np.isnan(rows)).sum(axis=1) >= 1]
    expected = np.nanmedian(rows, axis=1)
    assert np.array_equal(_row_medians(rows), expected)  # bit for bit
