"""Known answers for ``performance_status``."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from fulcrum_sync.patterns import PatternInput, get_pattern, run_pattern
from fulcrum_sync.patterns.performance_status import classify, performance_status

START = date(2025, 7, 1)


def _daily(values: list[float], targets: list[float | None] | None = None) -> PatternInput:
    dates = [START + timedelta(days=i) for i in range(len(values))]
    frame = pd.DataFrame({"date": dates, "value": values})
    target_frame = None
    if targets is not None:
        rows = [(d, t) for d, t in zip(dates, targets, strict=True) if t is not None]
        target_frame = pd.DataFrame(rows, columns=["date", "value"])
    return PatternInput("day", dates[-1], frame, targets=target_frame)


def test_twenty_percent_under_target_is_off_track_with_the_gap() -> None:
    result = performance_status(_daily([90.0, 80.0], [100.0, 100.0]))

    assert result.status == "off_track"
    assert result.value == 80.0
    assert result.target == 100.0
    assert result.gap == pytest.approx(20.0)
    assert result.gap_pct == pytest.approx(0.2)
    assert result.difference == pytest.approx(-20.0)
    assert result.difference_pct == pytest.approx(-0.2)
    assert result.overshoot is None
    assert result.overshoot_pct is None
    assert result.prior_value == 90.0
    assert result.change == pytest.approx(-10.0)
    assert result.change_pct == pytest.approx(-1 / 9)
    assert result.prior_period == date(2025, 7, 1)


def test_above_target_is_on_track_with_overshoot() -> None:
    result = performance_status(_daily([100.0, 110.0], [100.0, 100.0]))

    assert result.status == "on_track"
    assert result.overshoot == pytest.approx(10.0)
    assert result.overshoot_pct == pytest.approx(0.1)
    assert result.gap is None


def test_within_threshold_below_target_is_on_track() -> None:
    result = performance_status(_daily([100.0, 95.0], [100.0, 100.0]))

    assert result.status == "on_track"  # exactly at target * (1 - 0.05)
    assert result.gap == pytest.approx(5.0)


def test_no_target_for_the_period() -> None:
    result = performance_status(_daily([100.0, 95.0], [100.0, None]))

    assert result.status == "no_target"
    assert result.target is None
    assert result.gap is None and result.overshoot is None and result.difference is None
    assert result.status_held_periods == 1


def test_status_held_counts_consecutive_periods_with_the_same_status() -> None:
    values = [100.0, 100.0, 80.0, 82.0, 80.0]
    result = performance_status(_daily(values, [100.0] * 5))

    assert result.status == "off_track"
    assert result.status_held_periods == 3
    assert result.status_since == date(2025, 7, 3)
    assert result.window_start == date(2025, 7, 3)


def test_status_held_stops_at_a_missing_period() -> None:
    dates = [START + timedelta(days=i) for i in (0, 1, 3, 4)]
    frame = pd.DataFrame({"date": dates, "value": [80.0] * 4})
    targets = pd.DataFrame({"date": dates, "value": [100.0] * 4})
    result = performance_status(PatternInput("day", dates[-1], frame, targets=targets))

    assert result.status_held_periods == 2


def test_lower_is_better() -> None:
    worse = performance_status(_daily([10.0, 120.0], [100.0, 100.0]), higher_is_better=False)
    better = performance_status(_daily([10.0, 80.0], [100.0, 100.0]), higher_is_better=False)

    assert worse.status == "off_track"
    assert worse.overshoot == pytest.approx(20.0)
    assert better.status == "on_track"


def test_tenant_threshold_changes_the_status() -> None:
    spec = get_pattern("performance_status")
    data = _daily([90.0, 80.0], [100.0, 100.0])

    strict = run_pattern(spec, data)
    lenient = run_pattern(spec, data, {"threshold": 0.25})

    assert strict.result is not None and lenient.result is not None
    assert strict.result["status"] == "off_track"
    assert lenient.result["status"] == "on_track"
    assert lenient.result["settings"] == {"threshold": 0.25, "higher_is_better": True}
    assert lenient.settings["threshold"] == 0.25


def test_missing_prior_period_is_insufficient() -> None:
    dates = [START, START + timedelta(days=2)]
    frame = pd.DataFrame({"date": dates, "value": [1.0, 2.0]})
    outcome = run_pattern(get_pattern("performance_status"), PatternInput("day", dates[-1], frame))

    assert outcome.status == "skipped"
    assert outcome.error is not None
    assert outcome.error["type"] == "insufficient_data"
    assert "prior period 2025-07-02" in outcome.error["message"]


@pytest.mark.parametrize(
    ("value", "target", "threshold", "expected"),
    [
        (94.9, 100.0, 0.05, "off_track"),
        (95.0, 100.0, 0.05, "on_track"),
        (100.0, None, 0.05, "no_target"),
        (-110.0, -100.0, 0.05, "off_track"),
        (-104.0, -100.0, 0.05, "on_track"),
        (0.0, 0.0, 0.05, "on_track"),
    ],
)
def test_classify(value: float, target: float | None, threshold: float, expected: str) -> None:
    assert classify(value, target, threshold) == expected
