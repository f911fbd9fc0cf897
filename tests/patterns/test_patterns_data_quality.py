"""Known answers for ``data_quality``."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fulcrum_sync.patterns import PatternInput, get_pattern, run_pattern
from fulcrum_sync.patterns.data_quality import data_quality

START = date(2025, 7, 1)


def _daily(values: list[float | None], period: date | None = None) -> PatternInput:
    dates = [START + timedelta(days=i) for i in range(len(values))]
    rows = [(d, v) for d, v in zip(dates, values, strict=True) if v is not None]
    frame = pd.DataFrame(rows, columns=["date", "value"])
    return PatternInput("day", period or dates[-1], frame)


def test_flat_series_with_one_tenfold_spike_flags_only_the_spike() -> None:
    values = [100.0] * 60
    values[40] = 1000.0
    result = data_quality(_daily(values))

    assert len(result.anomalies) == 1
    anomaly = result.anomalies[0]
    assert anomaly.date == START + timedelta(days=40)
    assert anomaly.value == 1000.0
    assert anomaly.baseline == 100.0
    assert anomaly.direction == "up"
    assert anomaly.score > 3.5
    assert result.status == "issues" and result.issue_count == 1
    assert result.gaps == [] and result.zero_runs == [] and result.negative_runs == []
    assert result.latest_is_anomaly is False
    assert result.settings["window"] == 28 and result.settings["z_threshold"] == 3.5


def test_noisy_series_with_one_outlier() -> None:
    rng = np.random.default_rng(7)
    values = list(1000 + rng.normal(0, 10, 80))
    values[70] = 1200.0
    result = data_quality(_daily(values))

    assert [a.date for a in result.anomalies] == [START + timedelta(days=70)]
    assert 15 < result.anomalies[0].score < 25


def test_z_threshold_setting_from_tenant_changes_the_result() -> None:
    rng = np.random.default_rng(7)
    values = list(1000 + rng.normal(0, 10, 80))
    values[70] = 1200.0
    spec = get_pattern("data_quality")

    default = run_pattern(spec, _daily(values))
    lenient = run_pattern(spec, _daily(values), {"z_threshold": 50})

    assert default.result is not None and lenient.result is not None
    assert len(default.result["anomalies"]) == 1
    assert lenient.result["anomalies"] == []
    assert lenient.result["status"] == "ok"


def test_latest_value_as_drop_anomaly() -> None:
    values = [100.0, 102.0, 98.0, 101.0, 99.0, 100.0] * 6 + [10.0]
    result = data_quality(_daily(values))

    assert result.latest_is_anomaly is True
    assert result.anomalies[-1].direction == "down"


def test_gaps_are_runs_of_missing_periods() -> None:
    values: list[float | None] = [5.0] * 20
    values[3] = values[10] = values[11] = values[12] = None
    result = data_quality(_daily(values))

    assert result.missing_periods == 4
    assert [(g.start, g.end, g.periods) for g in result.gaps] == [
        (date(2025, 7, 4), date(2025, 7, 4), 1),
        (date(2025, 7, 11), date(2025, 7, 13), 3),
    ]
    assert result.anomalies == []


def test_missing_analysis_period_is_a_gap() -> None:
    result = data_quality(_daily([5.0] * 10, period=date(2025, 7, 12)))

    assert result.analysis_period_missing is True
    assert result.gaps[-1].start == date(2025, 7, 11)
    assert result.gaps[-1].end == date(2025, 7, 12)


def test_zero_and_negative_runs() -> None:
    values = [5.0, 0.0, 0.0, 5.0, -1.0, -2.0, -3.0, 5.0, 0.0, 5.0]
    result = data_quality(_daily(values))

    assert [(r.start.day, r.periods) for r in result.zero_runs] == [(2, 2), (9, 1)]
    assert [(r.start.day, r.periods) for r in result.negative_runs] == [(5, 3)]
    assert result.zero_values == 3 and result.negative_values == 3

    allowed = data_quality(_daily(values), non_negative=False)
    assert allowed.negative_runs == [] and allowed.negative_values == 0


def test_scan_periods_limits_the_checked_range() -> None:
    values: list[float | None] = [5.0] * 40
    values[2] = None
    result = data_quality(_daily(values), scan_periods=10)

    assert result.checked_periods == 10
    assert result.gaps == []
    assert result.window_start == date(2025, 7, 31)


def test_week_grain_uses_week_defaults() -> None:
    dates = [date(2025, 6, 30) + timedelta(weeks=i) for i in range(30)]
    frame = pd.DataFrame({"date": dates, "value": [100.0] * 29 + [500.0]})
    result = data_quality(PatternInput("week", dates[-1], frame))

    assert result.settings["window"] == 12 and result.settings["scan_periods"] == 26
    assert result.latest_is_anomaly is True


@pytest.mark.parametrize("values", [[], [1.0]])
def test_too_little_data_is_skipped(values: list[float]) -> None:
    frame = pd.DataFrame({"date": [START] * len(values), "value": values})
    outcome = run_pattern(get_pattern("data_quality"), PatternInput("day", START, frame))

    assert outcome.status == "skipped"


@settings(max_examples=40, deadline=None)
@given(
    level=st.floats(min_value=1.0, max_value=1e6),
    at=st.integers(min_value=14, max_value=59),
    factor=st.floats(min_value=10.0, max_value=1000.0),
)
def test_property_flat_series_spike_is_the_only_anomaly(
    level: float, at: int, factor: float
) -> None:
    values = [level] * 60
    values[at] = level * factor
    result = data_quality(_daily(values))

    assert [a.date for a in result.anomalies] == [START + timedelta(days=at)]
