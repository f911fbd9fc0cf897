"""Performance status: the analysis period's value against the prior period and its target.

Status rules (``threshold`` t, default 0.05):

- ``no_target`` when the period has no target;
- higher is better (default): ``off_track`` when ``value < target - |target| * t``;
- lower is better: ``off_track`` when ``value > target + |target| * t``;
- ``on_track`` otherwise.

``gap`` is how far the value is below the target and ``overshoot`` how far above it (each
None when it does not apply), whichever direction is better. ``status_held_periods`` counts
the consecutive periods, the analysis period included, with the same status; a period with
no value ends the run.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import Field

from fulcrum_sync.domain import GRAINS, Grain
from fulcrum_sync.patterns.base import (
    PatternInput,
    PatternResult,
    PatternSettings,
    num,
    pct_change,
    period_range,
    require,
    to_date,
    values_at,
)

NAME = "performance_status"
VERSION = "1.0.0"

Status = Literal["on_track", "off_track", "no_target"]


class PerformanceStatusSettings(PatternSettings):
    """Settings of ``performance_status``."""

    threshold: float = Field(default=0.05, ge=0, lt=1)
    higher_is_better: bool = True


class PerformanceStatusResult(PatternResult):
    """The analysis period's value, its change and its standing against the target."""

    value: float
    prior_period: date
    prior_value: float | None
    change: float | None
    change_pct: float | None
    target: float | None
    status: Status
    difference: float | None
    difference_pct: float | None
    gap: float | None
    gap_pct: float | None
    overshoot: float | None
    overshoot_pct: float | None
    status_held_periods: int
    status_since: date


def classify(
    value: float, target: float | None, threshold: float, higher_is_better: bool = True
) -> Status:
    """Return the status of ``value`` against ``target`` with the given tolerance."""
    if target is None:
        return "no_target"
    tolerance = abs(target) * threshold
    if higher_is_better:
        return "off_track" if value < target - tolerance else "on_track"
    return "off_track" if value > target + tolerance else "on_track"


def required_history(grain: Grain, settings: dict[str, Any]) -> int:
    """Return how many periods of history the pattern reads (the grain's default)."""
    return GRAINS[grain].patterns.status_lookback


def performance_status(data: PatternInput, **settings: Any) -> PerformanceStatusResult:
    """Compare the analysis period's value with the prior period and with its target.

    :param data: the base series (and targets) up to the analysis period.
    :param settings: ``threshold`` (0.05) and ``higher_is_better`` (True).
    Raises InsufficientDataError when the analysis period or the prior period has no value.
    """
    s = PerformanceStatusSettings.model_validate(settings)
    values = data.values
    period, prior = data.period, data.shifted(-1)
    require(
        period in values.index,
        f"no value for the analysis period {data.analysis_period}",
        needed=2,
        available=len(values),
    )
    require(
        prior in values.index,
        f"no value for the prior period {to_date(prior)}",
        needed=2,
        available=len(values),
    )
    value = float(values[period])
    prior_value = float(values[prior])
    target = num(data.target_values.get(period))
    status = classify(value, target, s.threshold, s.higher_is_better)

    held, since = _held(data, status, s)
    difference = value - target if target is not None else None
    gap = target - value if target is not None and value < target else None
    overshoot = value - target if target is not None and value > target else None
    return PerformanceStatusResult(
        analysis_period=data.analysis_period,
        grain=data.grain,
        window_start=min(since, to_date(prior)),
        window_end=data.analysis_period,
        settings=s.model_dump(),
        value=value,
        prior_period=to_date(prior),
        prior_value=prior_value,
        change=value - prior_value,
        change_pct=pct_change(value, prior_value),
        target=target,
        status=status,
        difference=difference,
        difference_pct=_share(difference, target),
        gap=gap,
        gap_pct=_share(gap, target),
        overshoot=overshoot,
        overshoot_pct=_share(overshoot, target),
        status_held_periods=held,
        status_since=since,
    )


def _held(data: PatternInput, status: Status, s: PerformanceStatusSettings) -> tuple[int, date]:
    """Count the consecutive periods up to the analysis period with ``status``."""
    values = data.values
    index = period_range(data.grain, values.index[0], data.period)
    aligned = values_at(values, index).tolist()  # plain floats: no label lookup per period
    targets = values_at(data.target_values, index).tolist()
    dates = index.date.tolist()
    held, since = 0, data.analysis_period
    for i in range(len(dates) - 1, -1, -1):
        value = num(aligned[i])
        if value is None:
            break
        if classify(value, num(targets[i]), s.threshold, s.higher_is_better) != status:
            break
        held, since = held + 1, dates[i]
    return held, since


def _share(amount: float | None, target: float | None) -> float | None:
    if amount is None or target is None or target == 0:
        return None
    return num(amount / abs(target))
