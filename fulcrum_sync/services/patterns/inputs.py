"""Read a context's stored data for its patterns: once per window, sliced per pattern."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from fulcrum_sync.catalog import ContextDef
from fulcrum_sync.domain import Window, period_end
from fulcrum_sync.patterns.base import PatternInput, normalise
from fulcrum_sync.patterns.registry import PatternSpec
from fulcrum_sync.services.jobs.keys import pattern_specs
from fulcrum_sync.store import pattern_data

_COLUMNS = {
    "series": ("date", "value"),
    "targets": ("date", "value"),
    "dimension": ("date", "slice", "value"),
}


class ContextData:
    """Loads a context's stored data once per window and slices it per pattern.

    ``preload`` reads a wide window once (a backfill's whole range plus lookback); later
    requests inside it are sliced in memory instead of queried. Every frame is normalised
    (``patterns.base.normalise``) once, when it is read: a pattern input is then a slice of
    it, built with ``PatternInput.from_normalised`` (normalising per pattern key cost more
    than most patterns).
    """

    def __init__(self, engine: Engine, ctx: ContextDef) -> None:
        self._engine, self._ctx = engine, ctx
        self._cache: dict[tuple[str, str | None, Window], pd.DataFrame] = {}
        # A wide frame, its window and its dates (read once: a column costs ~20 µs to get).
        self._wide: dict[tuple[str, str | None], tuple[Window, pd.DataFrame, np.ndarray]] = {}

    def preload(self, history: Window, targets: Window) -> None:
        """Read every series, dimension and the targets over a wide window once (one
        statement: store/pattern_data.read_inputs)."""
        ctx = self._ctx
        dimensions = [d.dimension_id for d in ctx.metric.dimensions]
        read = pattern_data.read_inputs(
            self._engine,
            ctx.tenant.tenant_id,
            ctx.metric.metric_id,
            ctx.grain.value,
            history,
            targets,
            dimensions,
        )
        wanted: list[tuple[str, str | None, Window, pd.DataFrame]] = [
            ("series", None, history, read.series),
            ("targets", None, targets, read.targets),
        ]
        wanted += [("dimension", d, history, read.dimensions[d]) for d in dimensions]
        for kind, dimension, window, raw in wanted:
            frame = normalise(raw, ctx.grain, _COLUMNS[kind])
            self._wide[(kind, dimension)] = (window, frame, frame["date"].to_numpy())

    def _read(self, kind: str, dimension: str | None, window: Window) -> pd.DataFrame:
        """Read one kind of frame over ``window``, normalised."""
        ids = (
            self._engine,
            self._ctx.tenant.tenant_id,
            self._ctx.metric.metric_id,
            self._ctx.grain.value,
        )
        if kind == "series":
            frame = pattern_data.read_series(*ids, window)
        elif kind == "targets":
            frame = pattern_data.read_targets(*ids, window)
        else:
            frame = pattern_data.read_dimension(*ids, dimension or "", window)
        return normalise(frame, self._ctx.grain, _COLUMNS[kind])

    def _get(self, kind: str, dimension: str | None, window: Window) -> pd.DataFrame:
        key = (kind, dimension, window)
        if key not in self._cache:
            wide = self._wide.get((kind, dimension))
            if wide and wide[0].start <= window.start and window.end <= wide[0].end:
                self._cache[key] = _between(wide[1], wide[2], window)
            else:
                self._cache[key] = self._read(kind, dimension, window)
        return self._cache[key]

    def input_for(
        self, spec: PatternSpec, period: date, dimension: str | None, settings: dict[str, Any]
    ) -> PatternInput:
        grain = self._ctx.grain
        window = spec.history_window(grain, period, settings)
        targets_window = spec.targets_window(grain, period, settings)
        return PatternInput.from_normalised(
            grain=grain,
            analysis_period=period,
            series=self._get("series", None, window),
            dimension=dimension,
            dimension_series=self._get("dimension", dimension, window) if dimension else None,
            targets=self._get("targets", None, targets_window) if targets_window else None,
            cut=False,  # the history window ends with the period: no row after it
        )


def _between(frame: pd.DataFrame, dates: np.ndarray, window: Window) -> pd.DataFrame:
    """The rows of a normalised (date-sorted) frame inside ``window`` (a slice, no copy);
    ``dates`` is its date column.

    Normalised dates are period starts, and windows start on one, so the slice holds what
    normalising the window's raw rows would have.
    """
    if frame.empty:
        return frame
    start = np.searchsorted(dates, pd.Timestamp(window.start).to_datetime64(), side="left")
    end = np.searchsorted(dates, pd.Timestamp(window.end).to_datetime64(), side="right")
    return frame.iloc[int(start) : int(end)]


def preloaded(
    engine: Engine,
    ctx: ContextDef,
    periods: list[date],
    specs: Sequence[PatternSpec] | None = None,
) -> ContextData:
    """Read the context's data for all its periods' patterns once (sliced per period).

    :param specs: the patterns that will run (default: the context's enabled ones).
    """
    data = ContextData(engine, ctx)
    if not periods:
        return data
    specs = pattern_specs(ctx) if specs is None else specs
    if not specs:
        return data
    settings = ctx.tenant.pattern_settings
    first, last = periods[0], periods[-1]
    history = [s.history_window(ctx.grain, first, settings.get(s.name)) for s in specs]
    targets = [
        w
        for s in specs
        for p in (first, last)
        if (w := s.targets_window(ctx.grain, p, settings.get(s.name))) is not None
    ]
    start = min(w.start for w in history)
    data.preload(
        Window(start, period_end(ctx.grain, last)),
        Window(
            min([start, *(w.start for w in targets)]),
            max([period_end(ctx.grain, last), *(w.end for w in targets)]),
        ),
    )
    return data
