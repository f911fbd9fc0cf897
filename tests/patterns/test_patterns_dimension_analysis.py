"""Known answers for ``dimension_analysis``."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fulcrum_sync.patterns import PatternInput, get_pattern, run_pattern
from fulcrum_sync.patterns.dimension_analysis import dimension_analysis

PRIOR = date(2025, 6, 30)
PERIOD = date(2025, 7, 7)


def _weekly(prior: dict[str, float], current: dict[str, float]) -> PatternInput:
    rows = [(PRIOR, s, v) for s, v in prior.items()] + [(PERIOD, s, v) for s, v in current.items()]
    frame = pd.DataFrame(rows, columns=["date", "slice", "value"])
    base = pd.DataFrame({"date": [PRIOR, PERIOD], "value": [1.0, 1.0]})
    return PatternInput("week", PERIOD, base, dimension="region", dimension_series=frame)


def test_two_slices_whose_shares_swap_are_both_movers() -> None:
    result = dimension_analysis(_weekly({"eu": 70, "us": 30}, {"eu": 30, "us": 70}))

    assert [m.slice for m in result.top_movers] == ["us"]
    assert [m.slice for m in result.bottom_movers] == ["eu"]
    assert result.top_movers[0].share_change == pytest.approx(0.4)
    assert result.bottom_movers[0].share_change == pytest.approx(-0.4)
    assert {(r.slice, r.rank, r.prior_rank, r.moved_up) for r in result.rank_changes} == {
        ("us", 1, 2, 1),
        ("eu", 2, 1, -1),
    }
    assert result.largest_share.slice == "us"
    assert result.largest_share.share == pytest.approx(0.7)
    assert result.smallest_share.slice == "eu"
    assert result.total == result.prior_total == 100.0
    assert result.total_change_pct == 0.0
    assert result.dimension == "region"
    assert result.window_start == PRIOR and result.window_end == PERIOD


def test_slice_values_shares_and_changes() -> None:
    result = dimension_analysis(_weekly({"a": 50, "b": 50}, {"a": 60, "b": 90, "c": 50}))

    by_slice = {s.slice: s for s in result.slices}
    assert [s.slice for s in result.slices] == ["b", "a", "c"]  # by value
    assert by_slice["a"].change == 10 and by_slice["a"].change_pct == pytest.approx(0.2)
    assert by_slice["a"].share == pytest.approx(0.3)
    assert by_slice["a"].share_change == pytest.approx(-0.2)
    assert by_slice["b"].share_change == pytest.approx(0.45 - 0.5)
    assert by_slice["c"].prior_value == 0.0 and by_slice["c"].change_pct is None
    assert by_slice["c"].prior_rank is None and by_slice["c"].rank == 3
    assert result.new_slices == ["c"] and result.gone_slices == []
    assert result.total == 200 and result.total_change_pct == pytest.approx(1.0)
    assert [m.slice for m in result.top_movers] == ["c"]
    assert [m.slice for m in result.bottom_movers] == ["a", "b"]


def test_gone_slice_and_movers_by_change() -> None:
    result = dimension_analysis(
        _weekly({"a": 10, "b": 20, "x": 5}, {"a": 40, "b": 25}), movers_by="change", top_n=1
    )

    assert result.gone_slices == ["x"]
    assert [m.slice for m in result.top_movers] == ["a"]
    assert [m.slice for m in result.bottom_movers] == ["x"]
    assert result.smallest_share.slice == "b"  # x is absent now and has no share rank


def test_max_slices_truncates_the_list_not_the_analysis() -> None:
    prior = {f"s{i:02d}": float(i + 1) for i in range(20)}
    current = {f"s{i:02d}": float(20 - i) for i in range(20)}
    result = dimension_analysis(_weekly(prior, current), max_slices=5)

    assert result.slice_count == 20
    assert len(result.slices) == 5
    assert result.slices_truncated is True
    assert len(result.rank_changes) == 20


def test_zero_total_gives_no_shares() -> None:
    result = dimension_analysis(_weekly({"a": 0, "b": 0}, {"a": 0, "b": 0}))

    assert all(s.share is None for s in result.slices)
    assert result.top_movers == [] and result.bottom_movers == []


@pytest.mark.parametrize(("prior", "current"), [({}, {"a": 1.0}), ({"a": 1.0}, {}), ({}, {})])
def test_missing_period_is_insufficient(prior: dict[str, float], current: dict[str, float]) -> None:
    outcome = run_pattern(get_pattern("dimension_analysis"), _weekly(prior, current))

    assert outcome.status == "skipped"
    assert outcome.error is not None and outcome.error["type"] == "insufficient_data"


def test_no_dimension_series_is_insufficient() -> None:
    base = pd.DataFrame({"date": [PRIOR, PERIOD], "value": [1.0, 1.0]})
    outcome = run_pattern(get_pattern("dimension_analysis"), PatternInput("week", PERIOD, base))

    assert outcome.status == "skipped"


def test_tenant_top_n_setting_is_used() -> None:
    data = _weekly({"a": 1, "b": 2, "c": 3, "d": 4}, {"a": 4, "b": 3, "c": 2, "d": 1})
    outcome = run_pattern(get_pattern("dimension_analysis"), data, {"top_n": 1})

    assert outcome.result is not None
    assert len(outcome.result["top_movers"]) == 1
    assert outcome.result["top_movers"][0]["slice"] == "a"


@settings(max_examples=50, deadline=None)
@given(
    st.dictionaries(st.sampled_from("abcdefgh"), st.floats(0.01, 1e6), min_size=1),
    st.dictionaries(st.sampled_from("abcdefgh"), st.floats(0.01, 1e6), min_size=1),
)
def test_property_shares_sum_to_one(prior: dict[str, float], current: dict[str, float]) -> None:
    result = dimension_analysis(_weekly(prior, current))

    assert sum(s.share or 0.0 for s in result.slices) == pytest.approx(1.0)
    assert sum(s.share_change or 0.0 for s in result.slices) == pytest.approx(0.0, abs=1e-9)
    assert len(result.top_movers) <= 3 and len(result.bottom_movers) <= 3
