"""The demo returns exactly what it returned before its rows were built faster (issue 26):
every row of the demo catalog and of a synthetic catalog, over windows of every grain and
with nulls, is exported (ISO date, ``float.hex`` of the value, slice) and hashed; the md5s
were taken with the code before the change (c2176fa)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import date

import pytest

from benchmarks.catalogs import synthetic_catalog
from fulcrum_sync.catalog import Catalog, demo_catalog
from fulcrum_sync.domain import Grain, Window
from fulcrum_sync.sources import DemoSource
from fulcrum_sync.sources.base import FetchRequest, SeriesRow

WINDOWS = (
    (Grain.DAY, Window(date(2025, 9, 8), date(2025, 12, 6))),  # the incremental window
    (Grain.DAY, Window(date(2025, 9, 9), date(2025, 12, 7))),
    (Grain.DAY, Window(date(2024, 2, 27), date(2024, 3, 2))),
    (Grain.WEEK, Window(date(2025, 1, 1), date(2025, 12, 31))),
    (Grain.MONTH, Window(date(2024, 1, 15), date(2025, 12, 31))),
    (Grain.QUARTER, Window(date(2023, 1, 1), date(2025, 12, 31))),
    (Grain.DAY, Window(date(2025, 12, 7), date(2025, 12, 6))),  # empty
)


def _requests(catalog: Catalog) -> Iterator[FetchRequest]:
    for tenant in catalog.tenants:
        for metric in tenant.metrics:
            for grain, window in WINDOWS:
                for dim in (None, *metric.dimensions):
                    yield FetchRequest(
                        tenant.tenant_id, tenant.identifier, metric, grain, window, dim
                    )


def _export(source: DemoSource, catalog: Catalog) -> tuple[int, str]:
    md5 = hashlib.md5()
    count = 0
    for request in _requests(catalog):
        rows = source.fetch_series(request)
        assert all(type(r) is SeriesRow for r in rows)
        for r in rows:
            value = r.value.hex() if isinstance(r.value, float) else repr(r.value)
            md5.update(f"{r.date.isoformat()}|{value}|{r.slice}\n".encode())
        md5.update(b"--\n")
        count += len(rows)
    return count, md5.hexdigest()


@pytest.mark.parametrize(
    ("catalog", "seed", "null_rate", "expected"),
    [
        ("demo", 7, 0.0, (47805, "d076106c00f72b2e0f007a30a04cba0d")),
        ("demo", 3, 0.2, (49976, "87336a37dedd9c1f34932176f615e829")),
        ("synthetic", 0, 0.0, (49228, "255bda78cc387ae8c5826291bda275d2")),
    ],
)
def test_the_demo_returns_the_rows_it_returned_before(
    catalog: str, seed: int, null_rate: float, expected: tuple[int, str]
) -> None:
    chosen = demo_catalog() if catalog == "demo" else synthetic_catalog(12, dimensions=3)
    assert _export(DemoSource(seed, null_rate=null_rate), chosen) == expected
