"""The quarter grain at Cube: the query asks for granularity ``quarter`` and the rows Cube
keys by ``<time dimension>.quarter`` come back as the quarters' first days."""

from __future__ import annotations

from datetime import date

from fulcrum_sync.catalog import MetricDef
from fulcrum_sync.domain import Grain, Window
from fulcrum_sync.sources.base import FetchRequest
from fulcrum_sync.sources.cube_protocol import build_query, parse_rows

METRIC = MetricDef(metric_id="revenue", measure="orders.total", time_dimension="orders.created_at")
REQUEST = FetchRequest(
    1, "acme", METRIC, Grain.QUARTER, Window(date(2025, 7, 1), date(2025, 12, 31))
)


def test_the_query_asks_cube_for_quarters() -> None:
    query = build_query(REQUEST, limit=100)
    (time_dimension,) = query["timeDimensions"]
    assert time_dimension["granularity"] == "quarter"
    assert time_dimension["dateRange"] == ["2025-07-01", "2025-12-31"]


def test_quarter_rows_come_back_as_the_quarters_first_days() -> None:
    data = [
        {"orders.created_at.quarter": "2025-07-01T00:00:00.000", "orders.total": "10.5"},
        {"orders.created_at.quarter": "2025-10-01T00:00:00.000", "orders.total": 7},
    ]
    rows = parse_rows(data, REQUEST)
    assert [(r.date, r.value) for r in rows] == [(date(2025, 7, 1), 10.5), (date(2025, 10, 1), 7.0)]
