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
from typing import TYPE_CHECKING

from fulcrum_sync.catalog import Catalog, demo_catalog
from fulcrum_sync.collector import importing
from fulcrum_sync.domain import SourceStats
from fulcrum_sync.sources.base import FetchRequest, Rows, SourceMetadata

if TYPE_CHECKING:  # the generator imports numpy: a run that fetches nothing never pays for it
    from fulcrum_sync.sources.demo_series import DemoSeries

_SERIES = "fulcrum_sync.sources.demo_series"


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
        self._series: DemoSeries | None = None  # the generator, from the first fetch
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DemoSource(seed={self.seed}, null_rate={self.null_rate})"

    def fetch_series(self, request: FetchRequest) -> Rows:
        """Return the requested series: only periods that start inside the window."""
        series = self._series
        if series is None:
            series = self._start()
        return series.fetch(request)

    def _start(self) -> DemoSeries:
        """The generator, made at the first fetch (it imports numpy: collector.py)."""
        if _SERIES not in sys.modules:  # numpy lives as long as the process
            with importing():
                import fulcrum_sync.sources.demo_series  # noqa: F401
        from fulcrum_sync.sources.demo_series import DemoSeries

        with self._lock:
            if self._series is None:
                self._series = DemoSeries(self.seed, self.null_rate)
            return self._series

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
