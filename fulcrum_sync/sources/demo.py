"""The demo source: a deterministic, seeded generator of realistic metric series.

Every value is a pure function of ``(seed, tenant, metric, date[, dimension, slice])``:
noise comes from a counter-based hash of the day index (SplitMix64), never from a
stateful generator, so overlapping windows return identical values and an incremental
re-fetch changes nothing. Week and month values are sums (or, for rates and snapshot
metrics, means) of the day values. Like Cube, the demo leaves out rows whose count is
zero instead of emitting zeros.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from datetime import date
from itertools import compress
from typing import TYPE_CHECKING, cast

from fulcrum_sync.catalog import Catalog, demo_catalog
from fulcrum_sync.collector import importing
from fulcrum_sync.domain import SourceStats
from fulcrum_sync.sources.base import FetchRequest, Rows, SeriesColumns, SeriesRow, SourceMetadata

if TYPE_CHECKING:  # the model imports numpy: a run that fetches nothing never pays for it
    from fulcrum_sync.sources.demo_model import FloatArray, IntArray, Layout, SeriesParams

_MODEL = "fulcrum_sync.sources.demo_model"


class DemoSource:
    """Generate realistic, deterministic series for any metric; no account anywhere.

    :param seed: changes every series; the same seed always gives the same values.
    :param catalog: the catalog whose members ``fetch_metadata`` reports (default: the demo's).
    :param null_rate: fraction of values replaced by None, plus as many extra rows with a
        None slice in dimensional series, so tests can exercise sanitizing (default 0).
    """

    name = "demo"

    def __init__(self, seed: int, *, catalog: Catalog | None = None, null_rate: float = 0.0):
        if not 0.0 <= null_rate <= 1.0:
            raise ValueError("null_rate must be between 0 and 1")
        self.seed = seed
        self.null_rate = null_rate
        self._catalog = catalog
        self._recent: dict[tuple[int, int, int], FloatArray] = {}  # base series by window
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DemoSource(seed={self.seed}, null_rate={self.null_rate})"

    def fetch_series(self, request: FetchRequest) -> Rows:
        """Return the requested series: only periods that start inside the window."""
        if _MODEL not in sys.modules:  # numpy lives as long as the process: collector.py
            with importing():
                import fulcrum_sync.sources.demo_model  # noqa: F401
        from fulcrum_sync.sources.demo_model import (
            aggregate,
            classify,
            layout,
            series_params,
            slice_days,
            slice_params,
            target_level,
        )

        metric = request.metric
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
        lay = layout(request.grain, request.window)
        if not lay.starts:
            return []
        days, offsets, n_days = lay.days, lay.offsets, len(lay.days)
        base = self._base_days(params, days)
        if request.dimension is None:
            values = aggregate(base, offsets, n_days, params)
            return self._rows(params, lay, values[None, :], (None,))
        slices = slice_params(
            self.seed, request.tenant, metric.metric_id, request.dimension.dimension_id
        )
        values = aggregate(slice_days(params, slices, base, days), offsets, n_days, params)
        return self._rows(params, lay, values, slices.names)

    def _base_days(self, params: SeriesParams, days: IntArray) -> FloatArray:
        """``base_days``, kept for the next few fetches: every dimension of a metric splits
        the same base series over the same window (a context asks for it once per series)."""
        from fulcrum_sync.sources.demo_model import base_days

        key = (params.key, int(days[0]) if len(days) else 0, len(days))
        with self._lock:
            cached = self._recent.get(key)
        if cached is None:
            cached = base_days(params, days)
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
        import numpy as np

        from fulcrum_sync.sources.demo_model import uniform

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
        slices: Sequence[str | None] = names * len(starts)
        if p.kind == "count" and not p.mean:  # like Cube: no row where nothing was counted
            kept = (ordered != 0.0).tolist()
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

    def fetch_metadata(self, tenant: str) -> SourceMetadata:
        """Return every member of the catalog for ``tenant`` (all tenants' if it is unknown)."""
        catalog = self._catalog if self._catalog is not None else demo_catalog()
        tenants = [t for t in catalog.tenants if t.identifier == tenant] or list(catalog.tenants)
        measures: set[str] = set()
        dimensions: set[str] = set()
        for t in tenants:
            for m in t.metrics:
                measures.add(m.measure)
                dimensions.add(m.time_dimension)
                dimensions.update(d.member for d in m.dimensions)
        return SourceMetadata(frozenset(measures), frozenset(dimensions))

    def stats(self) -> SourceStats:
        """Return zeros: the demo sends no requests."""
        return SourceStats()

    def close(self) -> None:
        """Release nothing: the demo holds no connections."""
