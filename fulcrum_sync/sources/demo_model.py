"""The demo source's model: trend, weekly seasonality, noise and slice shares, day by day.

Every value is a pure function of ``(seed, tenant, metric, date[, dimension, slice])``:
noise comes from a counter-based hash of the day index (SplitMix64), never from a
stateful generator, so overlapping windows give identical values.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from fulcrum_sync.catalog import MetricDef
from fulcrum_sync.domain import (
    GRAINS,
    Grain,
    Window,
    iter_periods,
    period_end,
    period_start,
    shift_period,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

EPOCH = date(2025, 7, 1)  # day index 0: the trend's reference point
_EPOCH_ORDINAL = EPOCH.toordinal()
_EPOCH_WEEKDAY = EPOCH.weekday()
_DAYS_PER_YEAR = 365.25

SLICE_NAMES: dict[str, tuple[str, ...]] = {
    "region": ("na", "emea", "apac", "latam"),
    "channel": ("web", "mobile", "partner", "sales", "retail"),
    "plan": ("free", "starter", "pro", "enterprise"),
    "device": ("desktop", "mobile", "tablet"),
    "country": ("us", "gb", "de", "fr", "in", "br"),
    "priority": ("low", "medium", "high", "urgent"),
    "product": ("core", "analytics", "billing", "integrations"),
    "source": ("organic", "paid_search", "social", "referral", "email"),
    "reason": ("price", "competitor", "missing_features", "support", "other"),
    "clinic": ("downtown", "northside", "riverside", "westend", "harbor"),
    "specialty": ("general", "pediatrics", "cardiology", "dermatology", "orthopedics"),
    "payer": ("insurance", "medicare", "medicaid", "self_pay"),
    "age_band": ("18-34", "35-54", "55-74", "0-17", "75+"),
    "warehouse": ("wh_east", "wh_west", "wh_central"),
    "carrier": ("ups", "fedex", "dhl", "usps"),
}
GENERIC_SLICES = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta")

# Weekday profiles, Monday first: business traffic dips at weekends, consumer traffic peaks.
_BUSINESS_WEEK = np.array([1.08, 1.12, 1.10, 1.06, 1.00, 0.66, 0.58])
_CONSUMER_WEEK = np.array([0.94, 0.93, 0.95, 0.98, 1.05, 1.10, 1.05])

_MASK64 = (1 << 64) - 1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_TO_UNIT = 1.0 / float(1 << 53)


# --------------------------------------------------------------------------- hashing


def _f64(values: Any) -> FloatArray:
    """Return ``values`` as a float64 array (no copy when it already is one)."""
    return np.asarray(values, dtype=np.float64)


def _key(*parts: object) -> int:
    """Return a stable 64-bit key for ``parts`` (unlike ``hash()``, the same in every process)."""
    text = "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little")


def _units(key: int, n: int) -> FloatArray:
    """Return ``n`` uniforms in [0, 1) derived from ``key`` (for per-series parameters)."""
    raw = hashlib.shake_256(key.to_bytes(8, "little")).digest(8 * n)
    return (np.frombuffer(raw, dtype=np.uint64) >> np.uint64(11)).astype(np.float64) * _TO_UNIT


def uniform(key: int, days: IntArray) -> FloatArray:
    """Return one uniform in [0, 1) per day: the SplitMix64 output number ``day`` of ``key``."""
    out: FloatArray = _uniforms([key], days)[0]
    return out


def _uniforms(keys: list[int], days: IntArray) -> FloatArray:
    """``uniform`` for several keys at once, shape (keys, days): the same numbers, computed
    as one array (a series draws several streams of noise)."""
    k = np.array([key & _MASK64 for key in keys], dtype=np.uint64)[:, None]
    x = k + days.view(np.uint64)[None, :] * _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * _MIX1
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    x = x ^ (x >> np.uint64(31))
    out: FloatArray = (x >> np.uint64(11)).astype(np.float64) * _TO_UNIT
    return out


def _normals(keys: list[int], days: IntArray) -> FloatArray:
    """One standard normal per key and day, shape (keys, days) (Box-Muller on two hashed
    uniforms: the streams of ``key`` and ``key ^ 0x5DEECE66D``)."""
    u = _uniforms([*keys, *(key ^ 0x5DEECE66D for key in keys)], days)
    u1, u2 = u[: len(keys)], u[len(keys) :]
    return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * math.pi * u2)


# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True, slots=True)
class SeriesParams:
    """What shapes one metric's base series."""

    key: int
    kind: str  # "count" (integers), "money" (cents) or "rate" (0..1)
    mean: bool  # aggregate weeks and months by mean (rates, snapshots) instead of sum
    level: float  # expected day value at EPOCH
    growth: float  # per year
    weekly: FloatArray  # seven factors, Monday first, mean 1
    yearly_amp: float
    yearly_phase: float
    noise: float
    spike_rate: float
    spike_size: float  # 1 for flows; snapshots (MRR, backlog) jump far less


@dataclass(frozen=True, slots=True)
class _SliceParams:
    """What shapes one dimension's slices: names, share logits and their slow drift."""

    key: int
    names: tuple[str, ...]
    logit: FloatArray
    amp: FloatArray
    period: FloatArray
    phase: FloatArray
    trend: FloatArray
    noise: float


def classify(metric: MetricDef) -> tuple[str, bool]:
    """Return the metric's value kind and whether it aggregates by mean."""
    text = f"{metric.metric_id} {metric.measure}".lower()
    if any(w in text for w in ("rate", "ratio", "percent", "pct")):
        return "rate", True
    snapshot = "snapshot" in metric.time_dimension.lower() or any(
        w in text for w in ("mrr", "backlog", "balance")
    )
    money = any(w in text for w in ("amount", "revenue", "mrr", "price", "value"))
    return ("money" if money else "count"), snapshot


def target_level(metric: MetricDef, mean: bool) -> float | None:
    """Return a day-level value implied by the metric's targets, if it has any."""
    for grain in Grain:  # finest first
        spec = metric.targets.get(grain)
        if spec is None:
            continue
        value = float(np.median(list(spec.values()))) if isinstance(spec, dict) else float(spec)
        if value > 0:
            return value if mean else value / GRAINS[grain].mean_days
    return None


@lru_cache(maxsize=512)  # a metric's series are fetched together: a run need not keep all
def series_params(
    seed: int, tenant: str, metric_id: str, kind: str, mean: bool, target: float | None, text: str
) -> SeriesParams:
    """Derive (and cache) the parameters of one metric's base series."""
    key = _key(seed, tenant, metric_id)
    u = _units(key, 10)
    if target is not None:
        level = target * (0.9 + 0.16 * u[0])  # some metrics beat their target, some miss it
    elif kind == "rate":
        level = 0.05 + 0.55 * u[0]
    elif kind == "money":
        level = 10 ** (3.5 + 1.2 * u[0])
    elif "user" in text:
        level = 10 ** (3.0 + 1.0 * u[0])
    else:
        level = 10 ** (1.5 + 1.5 * u[0])
    snapshot = mean and kind != "rate"  # MRR, backlog: smooth levels, no weekday rhythm
    profile = _BUSINESS_WEEK if u[1] < 0.65 else _CONSUMER_WEEK
    amp = 0.0 if snapshot else (0.15 + 0.3 * u[2] if kind == "rate" else 0.5 + 0.6 * u[2])
    weekly = np.maximum(1.0 + amp * (profile - profile.mean()), 0.2)
    noise = 0.005 if snapshot else (0.02 if kind == "rate" else 0.03) + 0.05 * u[6]
    return SeriesParams(
        key=key,
        kind=kind,
        mean=mean,
        level=level,
        growth=(-0.05 + 0.35 * u[3]) * (0.3 if kind == "rate" else 1.0),
        weekly=weekly / weekly.mean(),
        yearly_amp=0.08 * u[4],
        yearly_phase=2 * math.pi * u[5],
        noise=noise,
        spike_rate=(0.006 + 0.012 * u[7]) * (0.25 if snapshot else 1.0),
        spike_size=0.1 if snapshot else 1.0,
    )


@lru_cache(maxsize=512)  # a metric's series are fetched together: a run need not keep all
def slice_params(seed: int, tenant: str, metric_id: str, dimension_id: str) -> _SliceParams:
    """Derive (and cache) the slices of one dimension and how their shares drift."""
    key = _key(seed, tenant, metric_id, "dimension", dimension_id)
    names = SLICE_NAMES.get(dimension_id.lower())
    if names is None:
        names = GENERIC_SLICES[: 3 + int(_units(key, 1)[0] * 4)]
    k = len(names)
    u = _units(key ^ 0xD1B54A32D192ED03, 5 * k + 1)
    rank = np.arange(k, dtype=np.float64)
    return _SliceParams(
        key=key,
        names=names,
        logit=-0.55 * rank + 0.8 * (u[:k] - 0.5),
        amp=0.05 + 0.25 * u[k : 2 * k],
        period=180.0 + 540.0 * u[2 * k : 3 * k],
        phase=2 * math.pi * u[3 * k : 4 * k],
        trend=0.3 * (u[4 * k : 5 * k] - 0.5),
        noise=0.03 + 0.05 * u[5 * k],
    )


# --------------------------------------------------------------------------- generation


def base_days(p: SeriesParams, days: IntArray) -> FloatArray:
    """Return the base series' day values (rounded as the kind requires) for ``days``."""
    t = days / _DAYS_PER_YEAR
    expected = p.level * np.maximum(1.0 + p.growth * t, 0.2)
    expected = expected * p.weekly[(days + _EPOCH_WEEKDAY) % 7]
    expected = expected * (1.0 + p.yearly_amp * np.sin(2 * math.pi * t + p.yearly_phase))
    count = p.kind == "count"
    normals = _normals([p.key ^ 0x1, p.key ^ 0x4] if count else [p.key ^ 0x1], days)
    z: FloatArray = normals[0]
    u_spike, size = _uniforms([p.key ^ 0x2, p.key ^ 0x3], days)
    if p.kind == "rate":
        spike = np.where(u_spike < p.spike_rate, 1.15 + 0.2 * size, 1.0)
        return _f64(np.round(np.clip(expected * (1.0 + p.noise * z) * spike, 0.001, 0.999), 4))
    up, down = p.spike_size * (0.4 + 1.2 * size), p.spike_size * (0.35 + 0.2 * size)
    spike = np.where(u_spike < p.spike_rate, 1.0 + up, 1.0)
    spike = np.where(u_spike > 1.0 - p.spike_rate / 3.0, 1.0 - down, spike)
    value = expected * np.exp(p.noise * z) * spike
    if count:
        poisson: FloatArray = np.sqrt(np.maximum(value, 0.0)) * normals[1]
        return np.maximum(np.rint(value + poisson), 0.0)
    return np.maximum(np.round(value, 2), 0.0)


def _shares(s: _SliceParams, days: IntArray, noise_scale: float = 1.0) -> FloatArray:
    """Return slice shares, shape (slices, days), each column summing to 1."""
    t = days / _DAYS_PER_YEAR
    logits = s.logit[:, None] + s.trend[:, None] * t[None, :]
    logits = logits + s.amp[:, None] * np.sin(
        2 * math.pi * days[None, :] / s.period[:, None] + s.phase[:, None]
    )
    noise = _normals([s.key ^ (i + 1) * 0x9E37 for i in range(len(s.names))], days)
    logits = logits + s.noise * noise_scale * noise
    weights = np.exp(logits - logits.max(axis=0))
    total: FloatArray = weights.sum(axis=0)
    return _f64(weights / total)


def _allocate(total: FloatArray, shares: FloatArray) -> FloatArray:
    """Split integer totals by shares into integers that sum exactly (largest remainder)."""
    raw = shares * total[None, :]
    floor = np.floor(raw)
    missing = np.rint(total - floor.sum(axis=0))
    order = np.argsort(floor - raw, axis=0)  # largest fractional part first
    ranks = np.argsort(order, axis=0)  # each slice's place in that order (the inverse)
    extra: FloatArray = (ranks < missing[None, :]).astype(np.float64)
    return floor + extra


def slice_days(p: SeriesParams, s: _SliceParams, base: FloatArray, days: IntArray) -> FloatArray:
    """Return the slices' day values, shape (slices, days); counts and money split the base."""
    shares = _shares(s, days, 0.2 if p.mean and p.kind != "rate" else 1.0)
    if p.kind == "rate":
        # A rate does not split: each slice deviates from it; the share-weighted mean ≈ base.
        logits = np.log(shares)
        centred = logits - (shares * logits).sum(axis=0)
        values = base[None, :] * np.exp(0.12 * np.clip(centred, -3.0, 3.0))
        return _f64(np.round(np.clip(values, 0.0, 1.0), 4))
    if p.kind == "count":
        return _allocate(base, shares)
    return _allocate(np.rint(base * 100.0), shares) / 100.0  # in cents: slices add up


@dataclass(frozen=True, slots=True, eq=False)  # shared arrays: compared by identity
class Layout:
    """Where a window's periods fall in its days (the same for every series of a run).

    :param starts: the periods starting inside the window.
    :param days: the window's day indices, first period's start to last period's end.
    :param offsets: each period's first day, in ``days``; ``keys``: its day index.
    """

    starts: tuple[date, ...]
    days: IntArray
    offsets: IntArray
    keys: IntArray
    _repeated: dict[int, tuple[date, ...]]

    def repeated(self, k: int) -> tuple[date, ...]:
        """Each start ``k`` times in a row (the dates of ``k`` slices' rows)."""
        dates = self._repeated.get(k)
        if dates is None:
            dates = self._repeated[k] = tuple(d for d in self.starts for _ in range(k))
        return dates


@lru_cache(maxsize=64)  # every series of a run asks for the same window
def layout(grain: Grain, window: Window) -> Layout:
    """Return the periods starting inside the window and where they fall in its days."""
    first = period_start(grain, window.start)
    if first < window.start:
        first = shift_period(grain, first, 1)
    last = period_start(grain, window.end)
    starts: tuple[date, ...] = ()
    first_day = n_days = 0
    if first <= last:
        first_day = first.toordinal() - _EPOCH_ORDINAL
        n_days = period_end(grain, last).toordinal() - first.toordinal() + 1
        starts = tuple(iter_periods(grain, first, last))
    days = np.arange(first_day, first_day + n_days, dtype=np.int64)
    offsets = np.array([s.toordinal() - first.toordinal() for s in starts], dtype=np.int64)
    keys = days[offsets]
    for shared in (days, offsets, keys):
        shared.setflags(write=False)  # shared by every fetch of the window
    return Layout(starts, days, offsets, keys, {})


def aggregate(values: FloatArray, offsets: IntArray, n_days: int, p: SeriesParams) -> FloatArray:
    """Aggregate day values (last axis) into periods starting at ``offsets``."""
    if len(offsets) == values.shape[-1]:
        return values
    sums = np.add.reduceat(values, offsets, axis=-1)
    if p.mean:
        lengths = np.diff(np.append(offsets, n_days))
        decimals = 4 if p.kind == "rate" else 2
        return np.round(sums / lengths, decimals)
    return _f64(np.round(sums, 2))
