"""The demo source's windows: where a window's periods fall in its days, and what depends
on those days only (computed once per window, shared by every series of a run).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import cast

import numpy as np
import numpy.typing as npt

from fulcrum_sync.domain import Grain, Window, iter_periods, period_end, period_start, shift_period

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

EPOCH = date(2025, 7, 1)  # day index 0: the trend's reference point
_EPOCH_ORDINAL = EPOCH.toordinal()
_EPOCH_WEEKDAY = EPOCH.weekday()
_DAYS_PER_YEAR = 365.25
GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # SplitMix64's gamma
TWO_PI = 2 * math.pi  # what ``2 * math.pi * x`` multiplies x by


@dataclass(frozen=True, slots=True, eq=False)  # shared arrays: compared by identity
class Layout:
    """Where a window's periods fall in its days (the same for every series of a run).

    :param starts: the periods starting inside the window.
    :param days: the window's day indices, first period's start to last period's end.
    :param offsets: each period's first day, in ``days``; ``keys``: its day index.

    The rest depends on the days only, so every series of the window shares it instead of
    computing it again: ``years`` (days / 365.25), ``yearly_angles`` (2 pi years),
    ``angles`` (2 pi days), ``weekdays`` (Monday 0), ``positions`` (0 .. days - 1) and
    ``golden`` (the days times SplitMix64's gamma, see demo_model's ``_uniforms``).
    """

    starts: tuple[date, ...]
    days: IntArray
    offsets: IntArray
    keys: IntArray
    years: FloatArray
    yearly_angles: FloatArray
    angles: FloatArray
    weekdays: IntArray
    positions: IntArray
    golden: npt.NDArray[np.uint64]
    _repeated: dict[int, tuple[date, ...]] = field(default_factory=dict)
    _sliced: dict[tuple[str | None, ...], tuple[str | None, ...]] = field(default_factory=dict)

    def repeated(self, k: int) -> tuple[date, ...]:
        """Each start ``k`` times in a row (the dates of ``k`` slices' rows)."""
        dates = self._repeated.get(k)
        if dates is None:
            dates = self._repeated[k] = tuple(d for d in self.starts for _ in range(k))
        return dates

    def sliced(self, names: tuple[str | None, ...]) -> tuple[str | None, ...]:
        """``names`` once per start (the slices of their rows, date by date)."""
        slices = self._sliced.get(names)
        if slices is None:
            if len(self._sliced) >= 64:  # the dimensions of a run: a few dozen at most
                self._sliced.clear()
            slices = self._sliced[names] = names * len(self.starts)
        return slices


@lru_cache(maxsize=64)  # every series of a run asks for the same window
def layout(grain: Grain, window: Window) -> Layout:
    """Return the periods starting inside the window and where they fall in its days."""
    first = period_start(grain, window.start)
    if first < window.start:
        first = shift_period(grain, first, 1)
    last = period_start(grain, window.end)
    starts: tuple[date, ...] = ()
    first_day = n_days = 0
    if first <= last:
        first_day = first.toordinal() - _EPOCH_ORDINAL
        n_days = period_end(grain, last).toordinal() - first.toordinal() + 1
        starts = tuple(iter_periods(grain, first, last))
    days = np.arange(first_day, first_day + n_days, dtype=np.int64)
    offsets = np.array([s.toordinal() - first.toordinal() for s in starts], dtype=np.int64)
    years = days / _DAYS_PER_YEAR
    shared = (
        days,
        offsets,
        days[offsets],
        years,
        TWO_PI * years,
        cast("FloatArray", TWO_PI * days),  # float64: days is int64
        (days + _EPOCH_WEEKDAY) % 7,
        np.arange(n_days, dtype=np.int64),
        days.view(np.uint64) * GOLDEN,
    )
    for array in shared:
        array.setflags(write=False)  # shared by every fetch of the window
    return Layout(starts, *shared)


def aggregate(
    values: FloatArray, offsets: IntArray, n_days: int, *, mean: bool, kind: str
) -> FloatArray:
    """Aggregate day values (last axis) into periods starting at ``offsets``: sums, or with
    ``mean`` means (rounded to 4 decimals for a ``kind`` of "rate", else to 2)."""
    if len(offsets) == values.shape[-1]:
        return values
    sums = np.add.reduceat(values, offsets, axis=-1)
    if mean:
        lengths = np.diff(np.append(offsets, n_days))
        decimals = 4 if kind == "rate" else 2
        return np.round(sums / lengths, decimals)
    return np.asarray(np.round(sums, 2), dtype=np.float64)
