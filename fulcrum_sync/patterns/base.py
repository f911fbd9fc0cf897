"""What every pattern shares: its input, its result base, its errors and the date helpers.

A pattern is a pure function ``(data: PatternInput, **settings) -> PatternResult``: pandas in,
a pydantic model out, no I/O. ``registry.run_pattern`` turns it into a ``PatternOutcome``.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from fulcrum_sync.domain import GRAINS, Grain, Window, period_end, period_start, shift_period
from fulcrum_sync.domain.grains import coarser_grains

OutcomeStatus = Literal["succeeded", "skipped", "failed"]
INSUFFICIENT_DATA = "insufficient_data"


class InsufficientDataError(Exception):
    """The input holds too little data for the pattern; reported as skipped, not failed."""

    def __init__(self, message: str, *, needed: int | None = None, available: int | None = None):
        super().__init__(message)
        self.needed = needed
        self.available = available


class PatternSettings(BaseModel):
    """Base of every pattern's settings: unknown keys are refused, values are validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class PatternResult(BaseModel):
    """Base of every pattern's result: the period analysed, the window used and the settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    analysis_period: date
    grain: Grain
    window_start: date | None = None
    window_end: date | None = None
    settings: dict[str, Any] = {}

    def to_json_dict(self) -> dict[str, Any]:
        """Return the result as JSON-safe data: ISO dates, and None for NaN or infinity.

        Serialised to JSON by pydantic (NaN and infinity become null) and read back: the same
        data as ``json_safe(self.model_dump(mode="json"))``, without a Python walk of it.
        """
        data: dict[str, Any] = json.loads(self.model_dump_json())
        return data


@dataclass(frozen=True, slots=True)
class PatternOutcome:
    """What running one pattern on one context produced; ``run_pattern`` never raises."""

    status: OutcomeStatus
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    window_start: date | None = None
    window_end: date | None = None
    pattern: str = ""
    version: str = ""
    dimension: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    duration_seconds: float = 0.0

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    @property
    def skipped(self) -> bool:
        return self.status == "skipped"

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    @property
    def error_text(self) -> str | None:
        """Return ``type: message`` for a skipped or failed outcome, None otherwise."""
        if not self.error:
            return None
        return f"{self.error.get('type')}: {self.error.get('message')}"


@dataclass(frozen=True, eq=False)
class PatternInput:
    """One context's data as of one analysis period, normalised on construction.

    :param grain: the context's grain (a ``Grain`` or its name).
    :param analysis_period: the period analysed; any day inside it is moved to its start.
    :param series: columns ``date`` and ``value``; rows after the analysis period are dropped.
    :param dimension: the dimension name, for patterns that run once per dimension.
    :param dimension_series: columns ``date``, ``slice``, ``value`` (rows after the analysis
        period are dropped).
    :param targets: columns ``date`` and ``value``; future periods are kept (look-forward).

    Dates become midnight ``Timestamp``s (for weeks and months, the start of their period),
    values floats; rows with a missing or non-finite value are dropped, duplicates keep the
    last row, and every frame is sorted by date.
    Raises ValueError when a frame lacks a required column.
    """

    grain: Grain
    analysis_period: date
    series: pd.DataFrame
    dimension: str | None = None
    dimension_series: pd.DataFrame | None = None
    targets: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        grain = Grain.parse(self.grain)
        period = period_start(grain, _as_date(self.analysis_period))
        cutoff = pd.Timestamp(period)
        object.__setattr__(self, "grain", grain)
        object.__setattr__(self, "analysis_period", period)
        object.__setattr__(
            self, "series", _normalise(self.series, grain, ("date", "value"), cutoff)
        )
        if self.dimension_series is not None:
            frame = _normalise(self.dimension_series, grain, ("date", "slice", "value"), cutoff)
            object.__setattr__(self, "dimension_series", frame)
        if self.targets is not None:
            object.__setattr__(
                self, "targets", _normalise(self.targets, grain, ("date", "value"), None)
            )

    @classmethod
    def from_normalised(
        cls,
        grain: Grain,
        analysis_period: date,
        series: pd.DataFrame,
        dimension: str | None = None,
        dimension_series: pd.DataFrame | None = None,
        targets: pd.DataFrame | None = None,
        *,
        cut: bool = True,
    ) -> PatternInput:
        """Build an input from frames :func:`normalise` made (a preloaded context's, sliced).

        Only the rows after the analysis period are cut (each frame is sorted by date): what
        the constructor does to every frame was done once, for all periods, on the wide ones.
        ``cut=False``: the series and dimension frames end at the analysis period already
        (slices of a window that ends with it), so nothing is looked at.
        """
        grain = Grain.parse(grain)
        period = period_start(grain, _as_date(analysis_period))
        if cut:
            cutoff = pd.Timestamp(period)
            series = _until(series, cutoff)
            if dimension_series is not None:
                dimension_series = _until(dimension_series, cutoff)
        made = object.__new__(cls)
        for name, value in (
            ("grain", grain),
            ("analysis_period", period),
            ("series", series),
            ("dimension", dimension),
            ("dimension_series", dimension_series),
            ("targets", targets),
        ):
            object.__setattr__(made, name, value)
        return made

    @cached_property
    def values(self) -> pd.Series:
        """Return the base series as floats indexed by period start."""
        return pd.Series(
            self.series["value"].to_numpy(), index=pd.DatetimeIndex(self.series["date"])
        )

    @cached_property
    def target_values(self) -> pd.Series:
        """Return the targets as floats indexed by period start (empty without targets)."""
        if self.targets is None:
            return pd.Series(dtype=float, index=pd.DatetimeIndex([]))
        return pd.Series(
            self.targets["value"].to_numpy(), index=pd.DatetimeIndex(self.targets["date"])
        )

    @property
    def period(self) -> pd.Timestamp:
        """Return the analysis period as a Timestamp."""
        return pd.Timestamp(self.analysis_period)

    def shifted(self, n: int) -> pd.Timestamp:
        """Return the start of the period ``n`` periods after the analysis period."""
        return pd.Timestamp(shift_period(self.grain, self.analysis_period, n))

    def data_window(self) -> Window | None:
        """Return the first stored date to the analysis period's end, or None when empty."""
        if self.series.empty:
            return None
        first = self.series["date"].iloc[0].date()
        return Window(first, period_end(self.grain, self.analysis_period))


def _as_date(value: date | datetime | pd.Timestamp | str) -> date:
    if isinstance(value, pd.Timestamp | datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def _until(frame: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """The rows of a date-sorted frame up to ``cutoff`` (a slice, not a copy)."""
    if frame.empty:
        return frame
    end = int(np.searchsorted(frame["date"].to_numpy(), cutoff.to_datetime64(), side="right"))
    return frame if end == len(frame) else frame.iloc[:end]


def normalise(frame: pd.DataFrame, grain: Grain, columns: tuple[str, ...]) -> pd.DataFrame:
    """Normalise a frame as :class:`PatternInput` does, without cutting at a period.

    ``columns``: ``("date", "value")`` for a series or targets, ``("date", "slice",
    "value")`` for a dimension's series. Slices by date of the result need no second pass.
    """
    return _normalise(frame, grain, columns, None)


def _normalise(
    frame: pd.DataFrame, grain: Grain, columns: tuple[str, ...], cutoff: pd.Timestamp | None
) -> pd.DataFrame:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"pattern input needs columns {list(columns)}; missing {missing}")
    out = frame.loc[:, list(columns)].copy()
    dates = pd.to_datetime(out["date"])
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_localize(None)
    dates = dates.dt.normalize().astype("datetime64[ns]")
    snap = GRAINS[grain].pandas_period
    if snap is not None:  # snap stray dates to their period's start
        dates = dates.dt.to_period(snap).dt.start_time
    out["date"] = dates
    out["value"] = pd.to_numeric(out["value"], errors="coerce").astype(float)
    out = out[np.isfinite(out["value"].to_numpy())]
    keys = ["date"]
    if "slice" in columns:
        out = out[out["slice"].notna()]
        out["slice"] = out["slice"].astype(str)
        keys.append("slice")
    if cutoff is not None:
        out = out[out["date"] <= cutoff]
    out = out.drop_duplicates(subset=keys, keep="last").sort_values(keys, kind="stable")
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------- helpers


def period_range(grain: Grain, start: date | pd.Timestamp, end: date | pd.Timestamp) -> pd.Index:
    """Return the period starts of ``grain`` from ``start`` to ``end`` inclusive."""
    return _period_range(
        grain, period_start(grain, _as_date(start)), period_start(grain, _as_date(end))
    )


@functools.lru_cache(maxsize=1024)
def _period_range(grain: Grain, first: date, last: date) -> pd.Index:
    # An index is immutable: the same ranges recur for every context and consecutive periods
    # (a backfill asks for the same month and quarter spans day after day), so build each once.
    # In nanoseconds, as normalised frames are: lookups between them need no conversion.
    start, end = pd.Timestamp(first).as_unit("ns"), pd.Timestamp(last).as_unit("ns")
    return pd.date_range(start, end, freq=GRAINS[grain].pandas_freq, name="date", unit="ns")


def values_at(values: pd.Series, index: pd.Index) -> np.ndarray:
    """``values.reindex(index)`` as a float array (NaN where missing), without building a
    Series: ``values`` has a unique index (a :class:`PatternInput`'s always has)."""
    if values.empty:
        return np.full(len(index), np.nan)
    known = values.index
    if known.dtype == index.dtype == np.dtype("datetime64[ns]") and known.is_monotonic_increasing:
        # Both sorted nanosecond dates (normalised frames, ``period_range``): a binary search.
        have, want = known.asi8, index.asi8
        at = np.searchsorted(have, want).clip(max=len(have) - 1)
        at[have[at] != want] = -1
    else:
        at = known.get_indexer(index)
    out: np.ndarray = values.to_numpy(dtype=float)[at]
    out[at < 0] = np.nan
    return out


def horizons(grain: Grain, period: date) -> dict[str, Window]:
    """Return the calendar spans of the grains coarser than ``grain`` that contain ``period``.

    Day: week, month, quarter. Week: month and quarter (weeks belong to the span holding
    their Monday). Month: quarter. Quarter: none.
    """
    return {
        g.value: Window(period_start(g, period), period_end(g, period))
        for g in coarser_grains(grain)
    }


def require(
    condition: bool, message: str, *, needed: int | None = None, available: int = 0
) -> None:
    """Raise InsufficientDataError with ``message`` unless ``condition`` holds."""
    if not condition:
        raise InsufficientDataError(message, needed=needed, available=available)


def num(value: Any) -> float | None:
    """Return ``value`` as a float, or None when it is missing, NaN or infinite."""
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def pct_change(new: float | None, old: float | None) -> float | None:
    """Return ``(new - old) / |old|``, or None when either is missing or ``old`` is zero."""
    if new is None or old is None or old == 0:
        return None
    return num((new - old) / abs(old))


def to_date(value: pd.Timestamp | date) -> date:
    """Return a Timestamp or date as a ``datetime.date``."""
    return value.date() if isinstance(value, pd.Timestamp | datetime) else value


def json_safe(value: Any) -> Any:
    """Return ``value`` with non-finite floats replaced by None and numpy scalars unwrapped."""
    kind = type(value)  # the plain types first: a result holds thousands of them
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is dict:
        return {str(k): json_safe(v) for k, v in value.items()}
    if kind is list:
        return [json_safe(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, date):
        return value.isoformat()
    return value
