"""Dimension analysis: one dimension's slices in the analysis period against the prior period.

A slice absent from a period counts as 0 there (the source leaves out periods with no data)
and is listed in ``new_slices`` or ``gone_slices``. Shares are fractions of the period's
total (None when the total is 0); ``share_change`` is in share points as a fraction
(0.1 = ten points). Ranks are by value, 1 = largest, ties share the better rank; a slice
absent from a period has no rank there.

Movers are ranked by ``movers_by`` (``share_change`` by default, or ``change`` /
``change_pct``): ``top_movers`` are the ``top_n`` largest positive moves, ``bottom_movers``
the ``top_n`` largest negative ones.
"""

from __future__ import annotations

import bisect
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from fulcrum_sync.domain import Grain
from fulcrum_sync.patterns.base import (
    InsufficientDataError,
    PatternInput,
    PatternResult,
    PatternSettings,
    num,
    pct_change,
    require,
    to_date,
)

NAME = "dimension_analysis"
VERSION = "1.0.0"
HISTORY = 2  # periods read at every grain: the period and the prior one

MoversBy = Literal["share_change", "change", "change_pct"]


class DimensionAnalysisSettings(PatternSettings):
    """Settings of ``dimension_analysis``."""

    top_n: int = Field(default=3, ge=1, le=100)
    movers_by: MoversBy = "share_change"
    max_slices: int = Field(default=100, ge=1, le=10_000)


class SliceStat(BaseModel):
    slice: str
    value: float
    prior_value: float
    change: float
    change_pct: float | None
    share: float | None
    prior_share: float | None
    share_change: float | None
    rank: int | None
    prior_rank: int | None


class SliceShare(BaseModel):
    slice: str
    value: float
    share: float | None


class RankChange(BaseModel):
    slice: str
    rank: int
    prior_rank: int
    moved_up: int


class DimensionAnalysisResult(PatternResult):
    """Per-slice values, shares, their changes, movers and rank changes of one dimension."""

    dimension: str | None
    total: float
    prior_total: float
    total_change: float
    total_change_pct: float | None
    slice_count: int
    slices: list[SliceStat]
    slices_truncated: bool
    top_movers: list[SliceStat]
    bottom_movers: list[SliceStat]
    largest_share: SliceShare
    smallest_share: SliceShare
    rank_changes: list[RankChange]
    new_slices: list[str]
    gone_slices: list[str]


def required_history(grain: Grain, settings: dict[str, Any]) -> int:
    """Return how many periods the pattern reads: the period and the prior one."""
    return HISTORY


def dimension_analysis(data: PatternInput, **settings: Any) -> DimensionAnalysisResult:
    """Compare each slice of ``data.dimension`` in the analysis period with the prior period.

    :param data: one dimension's series (``dimension_series``) up to the analysis period.
    :param settings: ``top_n`` (3), ``movers_by`` (``share_change``), ``max_slices`` (100).
    Raises InsufficientDataError unless both periods have slice values.
    """
    s = DimensionAnalysisSettings.model_validate(settings)
    frame = data.dimension_series
    if frame is None or frame.empty:
        raise InsufficientDataError(f"no series for dimension {data.dimension!r}", needed=2)
    prior = data.shifted(-1)
    # Each column once, as plain arrays (an Arrow string column's items are slow to index).
    columns = (frame["date"].to_numpy(), frame["slice"].tolist(), frame["value"].to_numpy())
    current_values = _slice_values(*columns, data.period)
    prior_values = _slice_values(*columns, prior)
    if not current_values or not prior_values:
        missing = data.analysis_period if not current_values else to_date(prior)
        which = "analysis" if not current_values else "prior"
        require(
            False,
            f"no slice values for the {which} period {missing}",
            needed=2,
            available=int(frame["date"].nunique()),
        )
    # Plain Python over the few slices of two periods (no frame per call, no row Series):
    # every slice of either period, by name; a slice absent from a period counts 0 there.
    names = sorted(current_values.keys() | prior_values.keys())
    value = [current_values.get(n, 0.0) for n in names]
    prior_value = [prior_values.get(n, 0.0) for n in names]
    total, prior_total = float(np.sum(value)), float(np.sum(prior_value))  # as pandas sums
    rank, prior_rank = _ranks(current_values), _ranks(prior_values)
    # Largest value first, then largest prior value; ties keep the name order (stable).
    order = sorted(range(len(names)), key=lambda i: (-value[i], -prior_value[i]))
    stats = [
        _stat(
            names[i],
            value[i],
            prior_value[i],
            rank.get(names[i]),
            prior_rank.get(names[i]),
            total,
            prior_total,
        )
        for i in order
    ]
    present = [st for st in stats if st.rank is not None]
    by_share = sorted(present, key=lambda st: (st.share or 0.0, st.value), reverse=True)
    key = s.movers_by
    moved = [st for st in stats if getattr(st, key) is not None]
    rises = sorted((st for st in moved if getattr(st, key) > 0), key=lambda st: -getattr(st, key))
    falls = sorted((st for st in moved if getattr(st, key) < 0), key=lambda st: getattr(st, key))
    return DimensionAnalysisResult(
        analysis_period=data.analysis_period,
        grain=data.grain,
        window_start=to_date(prior),
        window_end=data.analysis_period,
        settings=s.model_dump(),
        dimension=data.dimension,
        total=total,
        prior_total=prior_total,
        total_change=total - prior_total,
        total_change_pct=pct_change(total, prior_total),
        slice_count=len(stats),
        slices=stats[: s.max_slices],
        slices_truncated=len(stats) > s.max_slices,
        top_movers=rises[: s.top_n],
        bottom_movers=falls[: s.top_n],
        largest_share=_share(by_share[0]),
        smallest_share=_share(by_share[-1]),
        rank_changes=[
            RankChange(
                slice=st.slice,
                rank=st.rank,
                prior_rank=st.prior_rank,
                moved_up=st.prior_rank - st.rank,
            )
            for st in stats
            if st.rank is not None and st.prior_rank is not None and st.rank != st.prior_rank
        ],
        new_slices=sorted(current_values.keys() - prior_values.keys()),
        gone_slices=sorted(prior_values.keys() - current_values.keys()),
    )


def _slice_values(
    dates: np.ndarray, slices: list[Any], values: np.ndarray, when: pd.Timestamp
) -> dict[str, float]:
    """Each slice's value on ``when``, from a normalised frame's columns (sorted by date,
    one row per date and slice); only that date's rows become Python objects."""
    at = when.to_datetime64()
    start = int(np.searchsorted(dates, at, side="left"))
    end = int(np.searchsorted(dates, at, side="right"))
    out: dict[str, float] = {}
    for name, v in zip(slices[start:end], values[start:end].tolist(), strict=True):
        out[str(name)] = out.get(str(name), 0.0) + float(v)
    return out


def _ranks(values: dict[str, float]) -> dict[str, int]:
    """Rank by value, 1 = largest; ties share the better rank (pandas' ``method="min"``)."""
    ordered = sorted(values.values())
    return {n: len(ordered) - bisect.bisect_right(ordered, v) + 1 for n, v in values.items()}


def _ratio(part: float, whole: float) -> float | None:
    return num(part / whole) if whole != 0 else None


def _stat(
    name: str,
    value: float,
    prior_value: float,
    rank: int | None,
    prior_rank: int | None,
    total: float,
    prior_total: float,
) -> SliceStat:
    share, prior_share = _ratio(value, total), _ratio(prior_value, prior_total)
    share_change = share - prior_share if share is not None and prior_share is not None else None
    return SliceStat(
        slice=name,
        value=value,
        prior_value=prior_value,
        change=value - prior_value,
        change_pct=pct_change(value, prior_value),
        share=share,
        prior_share=prior_share,
        share_change=num(share_change),
        rank=rank,
        prior_rank=prior_rank,
    )


def _share(stat: SliceStat) -> SliceShare:
    return SliceShare(slice=stat.slice, value=stat.value, share=stat.share)
