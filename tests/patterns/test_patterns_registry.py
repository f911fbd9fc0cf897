"""The registry, ``run_pattern``'s isolation and ``PatternInput``'s normalisation."""

from __future__ import annotations

import dataclasses
import json
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fulcrum_sync.domain import Grain, InputError, Window
from fulcrum_sync.patterns import (
    REGISTRY,
    PatternInput,
    PatternResult,
    get_pattern,
    list_patterns,
    run_pattern,
    validate_pattern_settings,
)
from fulcrum_sync.patterns.base import horizons, json_safe

NAMES = [
    "data_quality",
    "dimension_analysis",
    "forecasting",
    "historical_performance",
    "performance_status",
]
START = date(2025, 7, 1)


def _data(values: list[float], grain: str = "day", with_dimension: bool = True) -> PatternInput:
    dates = [START + timedelta(days=i) for i in range(len(values))]
    frame = pd.DataFrame({"date": dates, "value": values})
    dims = pd.DataFrame(
        [
            (d, s, v * w)
            for d, v in zip(dates, values, strict=True)
            for s, w in (("a", 0.4), ("b", 0.6))
        ],
        columns=["date", "slice", "value"],
    )
    period = dates[-1] if dates else START
    return PatternInput(
        grain,
        period,
        frame,
        dimension="region" if with_dimension else None,
        dimension_series=dims if with_dimension else None,
        targets=pd.DataFrame({"date": dates, "value": [100.0] * len(dates)}),
    )


# --------------------------------------------------------------------------- registry


def test_registry_lists_every_pattern() -> None:
    assert [spec.name for spec in list_patterns()] == NAMES
    for spec in list_patterns():
        assert spec.version == "1.0.0"
        # Every pattern runs at every grain but forecasting at quarters (no coarser span).
        assert spec.grains == frozenset(Grain) - (
            {Grain.QUARTER} if spec.name == "forecasting" else set()
        )
        assert all(spec.supports(g) for g in ("day", "weekly", Grain.MONTH))
        assert set(spec.lookback) == spec.grains
    assert get_pattern("dimension_analysis").needs_dimension
    assert not get_pattern("forecasting").needs_dimension
    assert get_pattern("forecasting").needs == {"base", "forward_targets"}
    assert get_pattern("performance_status").needs_targets


def test_unknown_pattern_lists_known_ones() -> None:
    with pytest.raises(InputError) as err:
        get_pattern("nosuch")

    assert str(err.value) == f"unknown pattern 'nosuch': known patterns are {', '.join(NAMES)}"


def test_resolve_settings_merges_defaults_and_refuses_unknown_keys() -> None:
    spec = get_pattern("performance_status")

    assert spec.resolve_settings(None) == {"threshold": 0.05, "higher_is_better": True}
    assert spec.resolve_settings({"threshold": 0.1})["threshold"] == 0.1
    with pytest.raises(InputError, match=r"unknown setting 'treshold'.*known: higher_is_better"):
        spec.resolve_settings({"treshold": 0.1})
    with pytest.raises(InputError, match=r"threshold: Input should be less than 1 \(got 2\)"):
        spec.resolve_settings({"threshold": 2})


def test_validate_pattern_settings_checks_names_and_values() -> None:
    validate_pattern_settings({"data_quality": {"window": 21, "z_threshold": 4.0}})
    with pytest.raises(InputError, match="unknown pattern 'nope'"):
        validate_pattern_settings({"nope": {}})
    with pytest.raises(InputError, match="window"):
        validate_pattern_settings({"data_quality": {"window": "wide"}})


def test_windows_to_load() -> None:
    period = date(2025, 8, 13)
    status = get_pattern("performance_status")
    history = get_pattern("historical_performance")
    forecast = get_pattern("forecasting")

    assert status.history_window("day", period) == Window(date(2025, 5, 16), period)
    assert status.targets_window("day", period) == status.history_window("day", period)
    assert history.lookback_for("month") == 24
    assert history.lookback_for("month", {"periods": 36}) == 37
    assert history.history_window("month", date(2025, 8, 1), {"periods": 36}) == Window(
        date(2022, 8, 1), date(2025, 8, 31)
    )
    assert forecast.targets_window("day", period) == Window(date(2025, 7, 1), date(2025, 9, 30))
    assert forecast.targets_window("day", date(2025, 9, 30)) == Window(
        date(2025, 7, 1), date(2025, 10, 5)
    )
    assert get_pattern("data_quality").targets_window("day", period) is None


def test_horizons() -> None:
    assert horizons(Grain.DAY, date(2025, 8, 13)) == {
        "week": Window(date(2025, 8, 11), date(2025, 8, 17)),
        "month": Window(date(2025, 8, 1), date(2025, 8, 31)),
        "quarter": Window(date(2025, 7, 1), date(2025, 9, 30)),
    }
    assert list(horizons(Grain.WEEK, date(2025, 8, 11))) == ["month", "quarter"]
    assert horizons(Grain.MONTH, date(2025, 12, 1)) == {
        "quarter": Window(date(2025, 10, 1), date(2025, 12, 31))
    }


# --------------------------------------------------------------------------- run_pattern


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("values", [[], [42.0]], ids=["empty", "one-point"])
def test_empty_or_one_point_series_is_skipped_as_insufficient_data(
    name: str, values: list[float]
) -> None:
    outcome = run_pattern(get_pattern(name), _data(values))

    assert outcome.status == "skipped"
    assert outcome.result is None
    assert outcome.error is not None
    assert outcome.error["type"] == "insufficient_data"
    assert outcome.error["message"]
    assert outcome.pattern == name and outcome.version == "1.0.0"


def test_injected_raising_function_gives_a_failed_outcome() -> None:
    def boom(data: PatternInput, **settings: Any) -> PatternResult:
        raise ZeroDivisionError("division by zero in the pattern")

    spec = dataclasses.replace(get_pattern("performance_status"), func=boom)
    outcome = run_pattern(spec, _data([1.0, 2.0, 3.0]), {"threshold": 0.1})

    assert outcome.status == "failed"
    assert outcome.failed and not outcome.succeeded
    assert outcome.result is None
    assert outcome.error is not None
    assert outcome.error["type"] == "ZeroDivisionError"
    assert outcome.error["message"] == "division by zero in the pattern"
    assert outcome.error["where"].startswith("test_patterns_registry.py:")
    assert outcome.error_text == "ZeroDivisionError: division by zero in the pattern"
    assert outcome.settings == {"threshold": 0.1, "higher_is_better": True}
    # the real pattern is untouched and still runs
    assert run_pattern(get_pattern("performance_status"), _data([1.0, 2.0, 3.0])).succeeded


def test_a_function_returning_the_wrong_type_fails() -> None:
    spec = dataclasses.replace(get_pattern("data_quality"), func=lambda data, **kw: {"x": 1})
    outcome = run_pattern(spec, _data([1.0, 2.0]))

    assert outcome.status == "failed"
    assert outcome.error is not None and outcome.error["type"] == "TypeError"


def test_unknown_setting_gives_a_failed_outcome() -> None:
    outcome = run_pattern(get_pattern("data_quality"), _data([1.0] * 5), {"windw": 3})

    assert outcome.status == "failed"
    assert outcome.error is not None
    assert outcome.error["type"] == "InputError"
    assert "unknown setting 'windw'" in outcome.error["message"]


def test_unsupported_grain_is_skipped() -> None:
    spec = dataclasses.replace(get_pattern("forecasting"), grains=frozenset({Grain.DAY}))
    dates = [date(2025, 1, 1), date(2025, 2, 1)]
    data = PatternInput("month", dates[-1], pd.DataFrame({"date": dates, "value": [1.0, 2.0]}))

    assert not spec.supports("month")
    outcome = run_pattern(spec, data)
    assert outcome.status == "skipped"
    assert outcome.error is not None and outcome.error["type"] == "unsupported_grain"


@pytest.mark.parametrize("name", NAMES)
def test_every_pattern_succeeds_on_realistic_data_with_a_json_result(name: str) -> None:
    rng = np.random.default_rng(11)
    values = list(1000 + 5 * np.arange(120) + rng.normal(0, 40, 120))
    outcome = run_pattern(get_pattern(name), _data(values))

    assert outcome.status == "succeeded", outcome.error
    assert outcome.result is not None
    text = json.dumps(outcome.result, allow_nan=False)
    assert json.loads(text)["analysis_period"] == "2025-10-28"
    assert outcome.result["settings"]
    assert outcome.window_end == date(2025, 10, 28)
    assert outcome.window_start is not None and outcome.window_start <= outcome.window_end
    assert outcome.duration_seconds > 0


_values = st.lists(
    st.one_of(
        st.none(),
        st.just(0.0),
        st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False),
    ),
    max_size=60,
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(values=_values, name=st.sampled_from(NAMES), grain=st.sampled_from(["day", "week"]))
def test_property_run_pattern_never_raises_and_results_are_json_safe(
    values: list[float | None], name: str, grain: str
) -> None:
    step = timedelta(days=1 if grain == "day" else 7)
    start = date(2025, 6, 30)
    dates = [start + i * step for i in range(len(values))]
    rows = [(d, v) for d, v in zip(dates, values, strict=True) if v is not None]
    frame = pd.DataFrame(rows, columns=["date", "value"])
    dims = pd.DataFrame(
        [(d, s, v) for d, v in rows for s in ("x", "y")], columns=["date", "slice", "value"]
    )
    period = dates[-1] if dates else start
    data = PatternInput(grain, period, frame, dimension="d", dimension_series=dims, targets=frame)

    outcome = run_pattern(get_pattern(name), data)

    assert outcome.status in {"succeeded", "skipped"}, outcome.error
    json.dumps(outcome.result, allow_nan=False)
    json.dumps(outcome.error, allow_nan=False)


# --------------------------------------------------------------------------- input


def test_pattern_input_normalises_its_frames() -> None:
    series = pd.DataFrame(
        {
            "date": ["2025-07-03", "2025-07-01", "2025-07-02", "2025-07-02", "2025-07-09"],
            "value": ["3", 1, np.nan, 2.5, 9],
            "extra": list("abcde"),
        }
    )
    targets = pd.DataFrame({"date": [pd.Timestamp("2025-07-20")], "value": [7]})
    data = PatternInput("daily", pd.Timestamp("2025-07-03 15:00"), series, targets=targets)

    assert data.grain is Grain.DAY
    assert data.analysis_period == date(2025, 7, 3)
    assert list(data.series.columns) == ["date", "value"]
    assert data.values.to_dict() == {
        pd.Timestamp("2025-07-01"): 1.0,
        pd.Timestamp("2025-07-02"): 2.5,
        pd.Timestamp("2025-07-03"): 3.0,
    }
    assert data.target_values.to_dict() == {pd.Timestamp("2025-07-20"): 7.0}
    assert data.data_window() == Window(date(2025, 7, 1), date(2025, 7, 3))


def test_pattern_input_moves_the_period_to_its_start_and_checks_columns() -> None:
    frame = pd.DataFrame({"date": [date(2025, 7, 7)], "value": [1.0]})

    assert PatternInput("week", date(2025, 7, 10), frame).analysis_period == date(2025, 7, 7)
    assert PatternInput("month", "2025-07-10", frame).analysis_period == date(2025, 7, 1)
    with pytest.raises(ValueError, match="missing \\['value'\\]"):
        PatternInput("day", date(2025, 7, 7), pd.DataFrame({"date": [date(2025, 7, 7)]}))
    with pytest.raises(InputError):
        PatternInput("hourly", date(2025, 7, 7), frame)


def test_json_safe() -> None:
    assert json_safe({"a": [np.float64("nan"), float("inf"), np.int64(3), date(2025, 1, 2)]}) == {
        "a": [None, None, 3, "2025-01-02"]
    }


def test_registry_is_a_dict_of_specs() -> None:
    assert set(REGISTRY) == set(NAMES)


def test_pattern_input_snaps_week_and_month_dates_to_their_period_start() -> None:
    frame = pd.DataFrame(
        {"date": [date(2025, 7, 2), date(2025, 7, 13), date(2025, 7, 14)], "value": [1, 3, 4]}
    )
    data = PatternInput("week", date(2025, 7, 9), frame)

    assert data.values.to_dict() == {
        pd.Timestamp("2025-06-30"): 1.0,
        pd.Timestamp("2025-07-07"): 3.0,
    }
    monthly = PatternInput("month", date(2025, 7, 1), frame)
    assert monthly.values.to_dict() == {pd.Timestamp("2025-07-01"): 4.0}
