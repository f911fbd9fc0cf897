"""The demo source: deterministic across windows and processes, realistic, fast."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections import defaultdict
from datetime import date, timedelta

import numpy as np
import pytest

from fulcrum_sync.catalog import DimensionDef, MetricDef, TenantDef, demo_catalog
from fulcrum_sync.domain import Grain, Window
from fulcrum_sync.sources import DemoSource, Source
from fulcrum_sync.sources.base import FetchRequest, SeriesRow

CATALOG = demo_catalog()
ACME = next(t for t in CATALOG.tenants if t.identifier == "acme")
REVENUE = next(m for m in ACME.metrics if m.metric_id == "new_revenue")  # money, sum
ORDERS = next(m for m in ACME.metrics if m.metric_id == "orders")  # count, sum
INITECH = next(t for t in CATALOG.tenants if t.identifier == "initech")
CONVERSION = next(m for m in INITECH.metrics if m.metric_id == "conversion_rate")  # rate
YEAR = Window(date(2025, 1, 6), date(2026, 1, 4))  # 52 whole ISO weeks


def fetch(
    source: DemoSource,
    metric: MetricDef,
    window: Window,
    grain: Grain = Grain.DAY,
    dimension: str | None = None,
    tenant: TenantDef = ACME,
) -> list[SeriesRow]:
    dim = metric.dimension(dimension) if dimension else None
    if dimension and dim is None:
        dim = DimensionDef(dimension_id=dimension, member=f"x.{dimension}")
    request = FetchRequest(tenant.tenant_id, tenant.identifier, metric, grain, window, dim)
    return source.fetch_series(request)


def by_key(rows: list[SeriesRow]) -> dict[tuple[date, str | None], float | None]:
    return {(r.date, r.slice): r.value for r in rows}


def day_values(rows: list[SeriesRow]) -> np.ndarray:
    return np.array([r.value for r in rows], dtype=float)


# --------------------------------------------------------------------------- determinism


def test_satisfies_source_protocol() -> None:
    source: Source = DemoSource(1)
    assert source.name == "demo"
    source.close()


@pytest.mark.parametrize("grain", list(Grain))
@pytest.mark.parametrize("dimension", [None, "region"])
def test_overlapping_windows_return_identical_values(grain: Grain, dimension: str | None) -> None:
    full = Window(date(2024, 1, 1), date(2025, 12, 31))
    late = Window(date(2025, 3, 1), date(2026, 6, 30))
    a = by_key(fetch(DemoSource(42), REVENUE, full, grain, dimension))
    b = by_key(fetch(DemoSource(42), REVENUE, late, grain, dimension))
    overlap = set(a) & set(b)
    assert len(overlap) > (2 if grain is Grain.QUARTER else 8)  # Q2..Q4 2025 start in both
    assert all(a[k] == b[k] for k in overlap)


def test_incremental_refetch_of_last_90_days_matches_full_fetch() -> None:
    source = DemoSource(7)
    full = by_key(
        fetch(source, ORDERS, Window(date(2024, 7, 1), date(2025, 6, 30)), dimension="channel")
    )
    tail = by_key(
        fetch(source, ORDERS, Window(date(2025, 4, 2), date(2025, 6, 30)), dimension="channel")
    )
    assert tail and all(full[k] == v for k, v in tail.items())
    assert {k for k in full if k[0] >= date(2025, 4, 2)} == set(tail)


def test_same_seed_same_values_other_seed_other_values() -> None:
    a = fetch(DemoSource(42), REVENUE, YEAR)
    assert a == fetch(DemoSource(42), REVENUE, YEAR)
    assert day_values(a).tolist() != day_values(fetch(DemoSource(43), REVENUE, YEAR)).tolist()


def test_tenants_and_metrics_get_different_series() -> None:
    source = DemoSource(42)
    mine = day_values(fetch(source, ORDERS, YEAR))
    theirs = day_values(fetch(source, ORDERS, YEAR, tenant=INITECH))
    assert not np.array_equal(mine, theirs)


@pytest.mark.slow
def test_values_do_not_depend_on_the_process_hash_seed() -> None:
    code = (
        "from datetime import date;"
        "from fulcrum_sync.catalog import demo_catalog;"
        "from fulcrum_sync.domain import Grain, Window;"
        "from fulcrum_sync.sources.base import FetchRequest;"
        "from fulcrum_sync.sources.demo import DemoSource;"
        "m = demo_catalog().tenants[0].metrics[0];"
        "w = Window(date(2025, 7, 1), date(2025, 7, 10));"
        "r = FetchRequest(1, 'acme', m, Grain.DAY, w, m.dimensions[0]);"
        "rows = DemoSource(42).fetch_series(r);"
        "print([(r.date.isoformat(), r.value, r.slice) for r in rows])"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1
    here = [
        (r.date.isoformat(), r.value, r.slice)
        for r in fetch(
            DemoSource(42), REVENUE, Window(date(2025, 7, 1), date(2025, 7, 10)), dimension="region"
        )
    ]
    assert outputs.pop().strip() == str(here)


# --------------------------------------------------------------------------- shape


@pytest.mark.parametrize(
    ("grain", "window", "first", "count"),
    [
        (Grain.DAY, Window(date(2025, 7, 1), date(2025, 7, 31)), date(2025, 7, 1), 31),
        (Grain.WEEK, Window(date(2025, 6, 30), date(2025, 9, 28)), date(2025, 6, 30), 13),
        (Grain.WEEK, Window(date(2025, 7, 1), date(2025, 9, 28)), date(2025, 7, 7), 12),
        (Grain.MONTH, Window(date(2025, 1, 1), date(2025, 12, 31)), date(2025, 1, 1), 12),
    ],
)
def test_rows_only_for_periods_inside_the_window(
    grain: Grain, window: Window, first: date, count: int
) -> None:
    rows = fetch(DemoSource(42), REVENUE, window, grain)
    dates = [r.date for r in rows]
    assert dates == sorted(set(dates))
    assert dates[0] == first and len(dates) == count
    assert all(window.start <= d <= window.end for d in dates)
    if grain is Grain.WEEK:
        assert all(d.weekday() == 0 for d in dates)
    if grain is Grain.MONTH:
        assert all(d.day == 1 for d in dates)


def test_empty_window_gives_no_rows() -> None:
    assert (
        fetch(DemoSource(42), REVENUE, Window(date(2025, 7, 1), date(2025, 7, 6)), Grain.WEEK) == []
    )


def test_no_nulls_by_default_and_values_are_finite_and_positive() -> None:
    source = DemoSource(42)
    for tenant in CATALOG.tenants:
        for metric in tenant.metrics:
            for dim in (None, *metric.dimensions):
                request = FetchRequest(
                    tenant.tenant_id, tenant.identifier, metric, Grain.DAY, YEAR, dim
                )
                rows = source.fetch_series(request)
                assert rows, (tenant.identifier, metric.metric_id)
                assert all(
                    r.value is not None and math.isfinite(r.value) and r.value > 0 for r in rows
                )
                assert all((r.slice is None) == (dim is None) for r in rows)


def test_null_rate_emits_null_values_and_null_slices() -> None:
    rows = fetch(DemoSource(42, null_rate=0.1), ORDERS, YEAR, dimension="region")
    nulls = sum(r.value is None for r in rows)
    assert 0.05 * len(rows) < nulls < 0.15 * len(rows)
    assert any(r.slice is None for r in rows)
    with pytest.raises(ValueError):
        DemoSource(1, null_rate=2)


def test_slices_are_plausible_per_dimension() -> None:
    source = DemoSource(42)
    regions = {r.slice for r in fetch(source, REVENUE, YEAR, dimension="region")}
    assert regions == {"na", "emea", "apac", "latam"}
    plans = {r.slice for r in fetch(source, REVENUE, YEAR, dimension="plan")}
    assert plans == {"free", "starter", "pro", "enterprise"}
    for name in ("flavour", "team", "segment", "tier_x"):
        generic = {r.slice for r in fetch(source, REVENUE, YEAR, dimension=name)}
        assert 3 <= len(generic) <= 6
        assert generic <= {"alpha", "beta", "gamma", "delta", "epsilon", "zeta"}


# --------------------------------------------------------------------------- realism


def test_weekly_seasonality_is_visible_at_day_grain() -> None:
    source = DemoSource(42)
    for metric in (REVENUE, ORDERS):
        rows = fetch(source, metric, YEAR)
        by_weekday: dict[int, list[float]] = defaultdict(list)
        for r in rows:
            by_weekday[r.date.weekday()].append(float(r.value or 0))
        means = [np.mean(by_weekday[d]) for d in range(7)]
        assert max(means) / min(means) > 1.08, metric.metric_id
        weekly = np.array([r.value for r in fetch(source, metric, YEAR, Grain.WEEK)], dtype=float)
        # Weekly totals smooth out the weekday rhythm: far less relative spread than days.
        days = day_values(rows)
        assert np.std(weekly) / np.mean(weekly) < np.std(days) / np.mean(days)


def test_levels_follow_catalog_targets() -> None:
    values = day_values(fetch(DemoSource(42), REVENUE, Window(date(2025, 7, 1), date(2025, 9, 30))))
    assert 0.75 * 21_000 < np.median(values) < 1.3 * 21_000


def test_there_are_occasional_spikes() -> None:
    source = DemoSource(42)
    spikes = 0
    for tenant in CATALOG.tenants:
        for metric in tenant.metrics:
            values = day_values(fetch(source, metric, YEAR, tenant=tenant))
            if len(values) < 300:
                continue
            weekly_median = np.array(
                [np.median(values[max(0, i - 14) : i + 14 : 7]) for i in range(len(values))]
            )
            spikes += int(np.sum(values > 1.35 * weekly_median))
    assert spikes >= 5


def test_count_slices_sum_exactly_to_the_base() -> None:
    source = DemoSource(42)
    base = by_key(fetch(source, ORDERS, YEAR))
    totals: dict[date, float] = defaultdict(float)
    for r in fetch(source, ORDERS, YEAR, dimension="region"):
        totals[r.date] += float(r.value or 0)
    assert {d: v for (d, _), v in base.items()} == dict(totals)


@pytest.mark.parametrize("grain", list(Grain))
def test_money_slices_sum_to_about_the_base(grain: Grain) -> None:
    source = DemoSource(42)
    base = {d: v for (d, _), v in by_key(fetch(source, REVENUE, YEAR, grain)).items()}
    totals: dict[date, float] = defaultdict(float)
    for r in fetch(source, REVENUE, YEAR, grain, "channel"):
        totals[r.date] += float(r.value or 0)
    assert set(totals) == set(base)
    assert all(abs(totals[d] - float(base[d] or 0)) < 0.05 for d in base)


def test_rate_slices_stay_rates_around_the_base() -> None:
    rows = fetch(DemoSource(42), CONVERSION, YEAR, Grain.WEEK, "source", tenant=INITECH)
    base = {
        r.date: r.value for r in fetch(DemoSource(42), CONVERSION, YEAR, Grain.WEEK, tenant=INITECH)
    }
    assert all(0 <= float(r.value or 0) <= 1 for r in rows)
    for day in base:
        slices = [float(r.value or 0) for r in rows if r.date == day]
        assert (
            min(slices) <= float(base[day] or 0) * 1.05
            and max(slices) >= float(base[day] or 0) * 0.95
        )


def test_slice_shares_drift_over_time() -> None:
    rows = fetch(
        DemoSource(42), REVENUE, Window(date(2025, 1, 1), date(2026, 12, 31)), Grain.MONTH, "region"
    )
    shares: dict[str, list[float]] = defaultdict(list)
    totals: dict[date, float] = defaultdict(float)
    for r in rows:
        totals[r.date] += float(r.value or 0)
    for r in rows:
        shares[str(r.slice)].append(float(r.value or 0) / totals[r.date])
    moves = [max(s) - min(s) for s in shares.values()]
    assert max(moves) > 0.03  # some slice gains or loses at least 3 points over two years
    assert all(len(set(np.round(s, 6))) > 1 for s in shares.values())  # never frozen


@pytest.mark.parametrize("grain", [Grain.WEEK, Grain.MONTH])
def test_week_and_month_are_sums_of_days(grain: Grain) -> None:
    source = DemoSource(42)
    window = Window(date(2025, 3, 3), date(2025, 8, 31))
    days = by_key(
        fetch(source, ORDERS, Window(date(2025, 1, 1), date(2025, 12, 31)), dimension="region")
    )
    for r in fetch(source, ORDERS, window, grain, "region"):
        end = (
            date(r.date.year + r.date.month // 12, r.date.month % 12 + 1, 1)
            if grain is Grain.MONTH
            else r.date + timedelta(days=7)
        )
        expected = sum(
            float(days.get((r.date + timedelta(days=i), r.slice)) or 0)
            for i in range((end - r.date).days)
        )
        assert r.value == expected


def test_rates_aggregate_by_mean() -> None:
    source = DemoSource(42)
    days = by_key(fetch(source, CONVERSION, YEAR, tenant=INITECH))
    week = fetch(source, CONVERSION, YEAR, Grain.WEEK, tenant=INITECH)[0]
    expected = np.mean([float(days[(week.date + timedelta(days=i), None)] or 0) for i in range(7)])
    assert week.value == pytest.approx(expected, abs=1e-4)


def test_zero_counts_are_left_out_like_cube_does() -> None:
    churn = next(m for m in ACME.metrics if m.metric_id == "churned_accounts")
    rows = fetch(DemoSource(42), churn, YEAR)
    assert 0 < len(rows) < 364  # about two churns a day: some days have none and no row
    assert all(r.value for r in rows)


# --------------------------------------------------------------------------- metadata, speed


def test_metadata_lists_the_tenants_members() -> None:
    meta = DemoSource(42).fetch_metadata("acme")
    assert {"orders.total_amount", "orders.count", "sessions.unique_users"} <= meta.measures
    assert {"orders.created_at", "orders.region", "sessions.device"} <= meta.dimensions
    assert "subscriptions.mrr" not in meta.measures
    everything = DemoSource(42).fetch_metadata("someone-else")
    assert "subscriptions.mrr" in everything.measures and "orders.count" in everything.measures


def test_a_thousand_fetches_complete_quickly() -> None:
    source = DemoSource(42)
    window = Window(date(2025, 1, 1), date(2025, 12, 31))
    rows = 0
    for i in range(250):
        metric = REVENUE.model_copy(update={"metric_id": f"m{i}"})
        for dim in (None, "region", "channel", "plan"):
            rows += len(fetch(source, metric, window, Grain.DAY, dim))
    assert rows > 250 * 365 * 10
