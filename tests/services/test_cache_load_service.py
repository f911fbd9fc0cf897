"""The cache-load service: planning, isolation per context, recording, with injected sinks."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, insert, select

from fulcrum_sync.catalog import Catalog, ContextDef, MetricDef, TenantDef, parse_catalog
from fulcrum_sync.config import Settings
from fulcrum_sync.domain import Grain, InputError, SinkError
from fulcrum_sync.services.cache import load as cache_load
from fulcrum_sync.services.contexts.catalog import save_catalog
from fulcrum_sync.services.contexts.discover import discover
from fulcrum_sync.sinks.base import LoadStats
from fulcrum_sync.sinks.identifiers import CacheTable
from fulcrum_sync.sinks.local import LocalSink
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.cache import read_cache_frame, read_cache_loads

HISTORY = date(2025, 7, 1)
SETTINGS = Settings()
HOSTILE = 'x"; drop table y; --'


def seed(engine: Engine, days: int = 10) -> None:
    """Demo catalog and contexts; acme::new_revenue base + 3 slices, acme::orders base only."""
    discover(engine, "demo", HISTORY, Grain.DAY)
    dates = [HISTORY + timedelta(days=i) for i in range(days)]
    base = [
        {"tenant_id": 1, "metric_id": m, "grain": "day", "date": d, "value": 100.0 + i}
        for m in ("new_revenue", "orders")
        for i, d in enumerate(dates)
    ]
    dims = [
        {
            "tenant_id": 1,
            "metric_id": "new_revenue",
            "grain": "day",
            "dimension_name": name,
            "dimension_slice": slice_,
            "date": d,
            "value": 10.0 + i,
        }
        for name, slice_ in (("region", "eu"), ("region", "us"), ("channel", "web"))
        for i, d in enumerate(dates)
    ]
    with engine.begin() as conn:
        conn.execute(insert(t.metric_time_series), base)
        conn.execute(insert(t.metric_dimensional_time_series), dims)


def _last_run(engine: Engine) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(t.runs).order_by(t.runs.c.started_at.desc())).first()


class SpySink(LocalSink):
    """The local sink, recording calls and failing the tables named in ``fail``."""

    def __init__(self, engine: Engine, fail: dict[str, Exception] | None = None) -> None:
        super().__init__(engine)
        self.calls: list[str] = []
        self.fail = fail or {}

    def open(self) -> None:
        self.calls.append("open")
        super().open()

    def close(self) -> None:
        self.calls.append("close")

    def replace(
        self, table: CacheTable, frame: pd.DataFrame, grain: Grain, loaded_at: datetime
    ) -> LoadStats:
        self.calls.append(f"replace {table.name}")
        if table.name in self.fail:
            raise self.fail[table.name]
        return super().replace(table, frame, grain, loaded_at)


def test_read_cache_frame_puts_base_rows_first(engine: Engine) -> None:
    seed(engine, days=3)
    frame = read_cache_frame(engine, 1, "new_revenue", "day")
    assert len(frame) == 12
    assert frame["dimension_name"].iloc[:3].isna().all()
    assert list(frame["date"].iloc[:3]) == [date(2025, 7, 1), date(2025, 7, 2), date(2025, 7, 3)]
    assert set(frame["dimension_slice"].dropna()) == {"eu", "us", "web"}
    assert read_cache_frame(engine, 1, "active_users", "day").empty


def test_run_loads_skips_empty_and_records(engine: Engine) -> None:
    seed(engine)
    sink = SpySink(engine)
    started: list[int] = []
    seen: list[str] = []
    result = cache_load.run(
        engine,
        SETTINGS,
        sink,
        Grain.DAY,
        tenant="acme",
        on_start=started.append,
        on_result=lambda r: seen.append(r.context),
    )
    by = {c.context: c for c in result.contexts}
    assert started == [3] and sorted(seen) == sorted(by)
    assert by["acme::new_revenue"].status == "succeeded"
    assert by["acme::new_revenue"].rows == 40
    assert by["acme::new_revenue"].window is not None
    assert by["acme::new_revenue"].window.to_string() == "2025-07-01..2025-07-10"
    assert by["acme::orders"].rows == 10
    empty = by["acme::active_users"]
    assert (empty.status, empty.rows) == ("skipped", 0)
    assert empty.skip_reason == cache_load.EMPTY_REASON
    assert result.outcome == "succeeded"
    assert result.summary()["rows"] == 50
    assert sink.calls[0] == "open" and sink.calls[-1] == "close"
    records = {r.metric_id: r for r in read_cache_loads(engine, "day")}
    assert records["new_revenue"].rows_loaded == 40
    assert records["new_revenue"].window_end == date(2025, 7, 10)
    assert records["active_users"].status == "skipped"
    assert {r.target for r in records.values()} == {"local"}
    run = _last_run(engine)
    assert run.run_id == result.run_id and run.outcome == "succeeded"
    assert run.arguments == {"grain": "day", "tenant": "acme", "metric": None, "target": "local"}
    assert run.summary["rows"] == 50 and run.summary["skipped"] == 1


def test_one_failing_context_does_not_stop_the_others(engine: Engine) -> None:
    seed(engine)
    sink = SpySink(engine, fail={"cache_acme_new_revenue_day": SinkError("warehouse suspended")})
    result = cache_load.run(engine, SETTINGS, sink, Grain.DAY, tenant="acme")
    by = {c.context: c for c in result.contexts}
    assert by["acme::new_revenue"].status == "failed"
    assert by["acme::new_revenue"].error == "warehouse suspended"
    assert by["acme::orders"].status == "succeeded" and by["acme::orders"].rows == 10
    assert result.outcome == "partial"
    assert "replace cache_acme_orders_day" in sink.calls
    records = {r.metric_id: r for r in read_cache_loads(engine, "day")}
    assert (records["new_revenue"].status, records["new_revenue"].error) == (
        "failed",
        "warehouse suspended",
    )


def test_an_unexpected_error_is_isolated_too(engine: Engine) -> None:
    seed(engine)
    sink = SpySink(engine, fail={"cache_acme_orders_day": RuntimeError("boom")})
    result = cache_load.run(engine, SETTINGS, sink, Grain.DAY, tenant="acme")
    by = {c.context: c for c in result.contexts}
    assert by["acme::orders"].status == "failed" and not by["acme::orders"].dependency_failure
    assert by["acme::new_revenue"].status == "succeeded"
    assert result.outcome == "partial"


def test_every_load_failing_on_the_target_is_a_failed_run(engine: Engine) -> None:
    seed(engine)
    down = SinkError("connection reset")
    sink = SpySink(engine, fail={f"cache_acme_{m}_day": down for m in ("new_revenue", "orders")})
    result = cache_load.run(engine, SETTINGS, sink, Grain.DAY, tenant="acme")
    assert result.outcome == "failed"


def test_unreachable_target_raises_and_records_nothing(engine: Engine) -> None:
    seed(engine)

    class DownSink(SpySink):
        def open(self) -> None:
            raise SinkError("cannot connect to Snowflake account x as y: timeout")

    with pytest.raises(SinkError, match="timeout"):
        cache_load.run(engine, SETTINGS, DownSink(engine), Grain.DAY)
    assert read_cache_loads(engine) == []
    run = _last_run(engine)
    assert (run.command, run.outcome) == ("cache-load", "failed")
    assert "timeout" in run.summary["error"]


def test_hostile_filters_are_refused_before_any_sql(engine: Engine) -> None:
    seed(engine)
    sink = SpySink(engine)
    for kwargs in ({"tenant": HOSTILE}, {"metric": HOSTILE}):
        with pytest.raises(InputError, match="invalid"):
            cache_load.run(engine, SETTINGS, sink, Grain.DAY, **kwargs)
    assert sink.calls == []


def test_hostile_stored_names_are_refused_before_connecting(engine: Engine) -> None:
    tenant = TenantDef.model_construct(
        tenant_id=9, identifier=HOSTILE, cache_enabled=True, active=True, metrics=()
    )
    metric = MetricDef.model_construct(metric_id="orders")
    sink = SpySink(engine)
    with pytest.raises(InputError, match="invalid tenant"):
        cache_load.plan_tables(sink, [ContextDef(tenant, metric, Grain.DAY)])
    assert sink.calls == []


def _catalog_with_lookalike_metrics() -> Catalog:
    metric = "{measure: orders.count, time_dimension: orders.created_at, grains: [day]}"
    return parse_catalog(
        "tenants:\n"
        "  - {tenant_id: 1, identifier: acme, metrics: [\n"
        f"      {{metric_id: new-revenue, {metric[1:-1]}}},\n"
        f"      {{metric_id: new_revenue, {metric[1:-1]}}},\n"
        f"      {{metric_id: orders, {metric[1:-1]}}}]}}\n"
    )


def test_colliding_table_names_are_refused(engine: Engine) -> None:
    save_catalog(engine, _catalog_with_lookalike_metrics(), HISTORY)
    discover(engine, "demo", HISTORY, Grain.DAY)
    sink = SpySink(engine)
    with pytest.raises(InputError, match="acme::new-revenue and acme::new_revenue"):
        cache_load.run(engine, SETTINGS, sink, Grain.DAY, metric="new_revenue")
    result = cache_load.run(engine, SETTINGS, sink, Grain.DAY, metric="orders")  # unaffected
    assert [c.context for c in result.contexts] == ["acme::orders"]


def test_no_contexts_connects_to_nothing(engine: Engine) -> None:
    sink = SpySink(engine)
    result = cache_load.run(engine, SETTINGS, sink, Grain.DAY)
    assert result.contexts == [] and result.outcome == "succeeded"
    assert sink.calls == []


def test_result_serializes_for_json(engine: Any) -> None:
    from fulcrum_sync.jsonable import jsonable as to_jsonable

    seed(engine, days=2)
    result = cache_load.run(
        engine, SETTINGS, SpySink(engine), Grain.DAY, tenant="acme", metric="orders"
    )
    data = to_jsonable(result.contexts[0])
    assert data["context"] == "acme::orders"
    assert data["grain"] == "day"
    assert data["window"] == {"start": "2025-07-01", "end": "2025-07-02"}
