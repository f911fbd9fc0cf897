"""The demo source's generator: a request's rows from the model (sources/demo_model.py).

Imported at a :class:`~fulcrum_sync.sources.demo.DemoSource`'s first fetch, with numpy:
everything here is at module level, so a fetch runs no import statement (a context's three
fetches paid about 20 us for them).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import date
from itertools import compress
from typing import cast

import numpy as np

from fulcrum_sync.catalog import MetricDef
from fulcrum_sync.sources.base import FetchRequest, Rows, SeriesColumns, SeriesRow
from fulcrum_sync.sources.demo_model import (
    SeriesParams,
    base_days,
    classify,
    series_params,
    slice_days,
    slice_params,
    target_level,
    uniform,
)
from fulcrum_sync.sources.demo_window import FloatArray, Layout, aggregate, layout


class DemoSeries:
    """Generate a :class:`DemoSource`'s series (see its parameters); safe across threads."""

    def __init__(self, seed: int, null_rate: float) -> None:
        self.seed = seed
        self.null_rate = null_rate
        self._recent: dict[tuple[int, int, int], FloatArray] = {}  # base series by window
        self._metrics: dict[tuple[str, int], tuple[MetricDef, SeriesParams]] = {}
        self._lock = threading.Lock()

    def fetch(self, request: FetchRequest) -> Rows:
        """Return the requested series: only periods that start inside the window."""
        params = self._params(request)
        lay = layout(request.grain, request.window)
        if not lay.starts:
            return []
        offsets, n_days = lay.offsets, len(lay.days)
        base = self._base_days(params, lay)
        if request.dimension is None:
            values = aggregate(base, offsets, n_days, mean=params.mean, kind=params.kind)
            return self._rows(params, lay, values[None, :], (None,))
        slices = slice_params(
            self.seed, request.tenant, request.metric.metric_id, request.dimension.dimension_id
        )
        days = slice_days(params, slices, base, lay)
        values = aggregate(days, offsets, n_days, mean=params.mean, kind=params.kind)
        return self._rows(params, lay, values, slices.names)

    def _params(self, request: FetchRequest) -> SeriesParams:
        """The metric's ``series_params``, kept for the next few fetches: a context's base and
        dimensions ask for the same metric one after another (classifying it each time, and
        the lru_cache's key of seven arguments, cost more than the lookup here)."""
        metric = request.metric
        memo = (request.tenant, id(metric))
        with self._lock:
            known = self._metrics.get(memo)
        if known is not None and known[0] is metric:
            return known[1]
        kind, mean = classify(metric)
        params = series_params(
            self.seed,
            request.tenant,
            metric.metric_id,
            kind,
            mean,
            target_level(metric, mean),
            f"{metric.metric_id} {metric.measure}".lower(),
        )
        with self._lock:
            if len(self._metrics) >= 16:  # a few per worker
                del self._metrics[next(iter(self._metrics))]
            self._metrics[memo] = (metric, params)  # the metric held: its id stays its own
        return params

    def _base_days(self, params: SeriesParams, lay: Layout) -> FloatArray:
        """``base_days``, kept for the next few fetches: every dimension of a metric splits
        the same base series over the same window (a context asks for it once per series)."""
        days = lay.days
        key = (params.key, int(days[0]) if len(days) else 0, len(days))
        with self._lock:
            cached = self._recent.get(key)
        if cached is None:
            cached = base_days(params, lay)
            cached.setflags(write=False)  # shared: nobody may change it in place
            with self._lock:
                if len(self._recent) >= 16:  # a few per worker
                    del self._recent[next(iter(self._recent))]
                self._recent[key] = cached
        return cached

    def _rows(
        self, p: SeriesParams, lay: Layout, values: FloatArray, names: tuple[str | None, ...]
    ) -> Rows:
        """Turn a (slices, periods) value matrix into rows ordered by date, then slice: as
        columns (no tuple per row) unless nulls are drawn in."""
        k = values.shape[0]
        starts, keys = lay.starts, lay.keys
        ordered = values.T.ravel()
        flat = cast("list[float | None]", ordered.tolist())
        if self.null_rate > 0:
            for i in range(k):
                hit = uniform(p.key ^ 0x77 ^ (i << 8), keys) < self.null_rate
                for j in np.flatnonzero(hit).tolist():
                    flat[j * k + i] = None
        dates: Sequence[date] = lay.repeated(k)
        slices: Sequence[str | None] = lay.sliced(names)
        if p.kind == "count" and not p.mean and np.count_nonzero(ordered) < len(ordered):
            kept = (ordered != 0.0).tolist()  # like Cube: no row where nothing was counted
            dates, flat = list(compress(dates, kept)), list(compress(flat, kept))
            slices = list(compress(slices, kept))
        # A grid of periods and slice names, drawn as floats: clean unless nulls were drawn in.
        clean = self.null_rate == 0 and bool(np.isfinite(ordered).all())
        rows = SeriesColumns(dates, flat, None if names[0] is None else slices, clean=clean)
        if self.null_rate > 0 and names[0] is not None:
            extra = uniform(p.key ^ 0x78, keys) < self.null_rate
            listed = rows.rows() + [
                SeriesRow(starts[j], 1.0, None) for j in np.flatnonzero(extra).tolist()
            ]
            listed.sort(key=lambda r: r.date)
            return listed
        return rows
