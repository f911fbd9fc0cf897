"""The demo source's model: trend, weekly seasonality, noise and slice shares, day by day.

Every value is a pure function of ``(seed, tenant, metric, date[, dimension, slice])``:
noise comes from a counter-based hash of the day index (SplitMix64), never from a
stateful generator, so overlapping windows give identical values.
"""

from __future__ import annotations

import hashlib
import math
import struct
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from fulcrum_sync.catalog import MetricDef
from fulcrum_sync.domain import GRAINS, Grain
from fulcrum_sync.sources.demo_window import GOLDEN, TWO_PI, FloatArray, IntArray, Layout

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
# Each profile less its mean (what every metric's weekly factors are made of).
_BUSINESS_SWING = _BUSINESS_WEEK - _BUSINESS_WEEK.mean()
_CONSUMER_SWING = _CONSUMER_WEEK - _CONSUMER_WEEK.mean()

_MASK64 = (1 << 64) - 1
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_TO_UNIT = 1.0 / float(1 << 53)
_SHIFTS = tuple(np.uint64(n) for n in (30, 27, 31, 11))
_NORMAL_PAIR = 0x5DEECE66D  # a normal's second uniform: the stream of ``key ^ _NORMAL_PAIR``


# --------------------------------------------------------------------------- hashing


def _f64(values: Any) -> FloatArray:
    """Return ``values`` as a float64 array (no copy when it already is one)."""
    return np.asarray(values, dtype=np.float64)


def _key(*parts: object) -> int:
    """Return a stable 64-bit key for ``parts`` (unlike ``hash()``, the same in every process)."""
    text = "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little")


def _units(key: int, n: int) -> list[float]:
    """Return ``n`` uniforms in [0, 1) derived from ``key`` (for per-series parameters):
    each a 53-bit integer times 2**-53, exact as a Python float."""
    raw = hashlib.shake_256(key.to_bytes(8, "little")).digest(8 * n)
    return [(v >> 11) * _TO_UNIT for v in struct.unpack(f"<{n}Q", raw)]


def _stream_keys(keys: list[int], normals: int = 0) -> npt.NDArray[np.uint64]:
    """``keys`` as a column for :func:`_uniforms`, the first ``normals`` of them followed
    by their second streams (``key ^ _NORMAL_PAIR``, see :func:`_normals`) and the rest."""
    pairs = [key ^ _NORMAL_PAIR for key in keys[:normals]]
    mixed = [*keys[:normals], *pairs, *keys[normals:]]
    return np.array([key & _MASK64 for key in mixed], dtype=np.uint64)[:, None]


def uniform(key: int, days: IntArray) -> FloatArray:
    """Return one uniform in [0, 1) per day: the SplitMix64 output number ``day`` of ``key``."""
    golden = days.view(np.uint64) * GOLDEN
    out: FloatArray = _uniforms(_stream_keys([key]), golden)[0]
    return out


def _uniforms(keys: npt.NDArray[np.uint64], golden: npt.NDArray[np.uint64]) -> FloatArray:
    """``uniform`` for a column of keys at once, shape (keys, days), from the days times
    the golden gamma (``golden``, the same for every series of a window)."""
    s30, s27, s31, s11 = _SHIFTS
    x = keys + golden
    shifted = x >> s30
    x ^= shifted
    x *= _MIX1
    np.right_shift(x, s27, out=shifted)
    x ^= shifted
    x *= _MIX2
    np.right_shift(x, s31, out=shifted)
    x ^= shifted
    x >>= s11
    out: FloatArray = x.astype(np.float64)
    out *= _TO_UNIT
    return out


def _normals(u: FloatArray, n: int) -> FloatArray:
    """One standard normal per row of ``u[:n]`` and day, shape (n, days): Box-Muller on
    two hashed uniforms, the rows ``u[:n]`` and ``u[n:2n]`` (see :func:`_stream_keys`)."""
    root = np.log1p(-u[:n])
    root *= -2.0
    np.sqrt(root, out=root)
    root *= np.cos(TWO_PI * u[n : 2 * n])
    return root


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
    streams: npt.NDArray[np.uint64]  # the noise's keys (see base_days)


@dataclass(frozen=True, slots=True)
class _SliceParams:
    """What shapes one dimension's slices: names, share logits and their slow drift (each
    a column: one row per slice)."""

    key: int
    names: tuple[str, ...]
    logit: FloatArray
    amp: FloatArray
    period: FloatArray
    phase: FloatArray
    trend: FloatArray
    noise: float
    streams: npt.NDArray[np.uint64]  # the noise's keys (see _shares)
    ranks: IntArray  # 0 .. slices - 1, a column


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
    """Derive (and cache) the parameters of one metric's base series (scalars as Python
    floats: the same IEEE operations as on numpy's, at a fraction of the cost)."""
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
    swing = _BUSINESS_SWING if u[1] < 0.65 else _CONSUMER_SWING
    amp = 0.0 if snapshot else (0.15 + 0.3 * u[2] if kind == "rate" else 0.5 + 0.6 * u[2])
    weekly = amp * swing
    weekly += 1.0
    np.maximum(weekly, 0.2, out=weekly)
    weekly /= np.add.reduce(weekly) / len(weekly)  # its mean, as ndarray.mean computes it
    noise = 0.005 if snapshot else (0.02 if kind == "rate" else 0.03) + 0.05 * u[6]
    count = kind == "count"  # a count draws a second normal (its Poisson noise)
    return SeriesParams(
        key=key,
        kind=kind,
        mean=mean,
        level=level,
        growth=(-0.05 + 0.35 * u[3]) * (0.3 if kind == "rate" else 1.0),
        weekly=weekly,
        yearly_amp=0.08 * u[4],
        yearly_phase=2 * math.pi * u[5],
        noise=noise,
        spike_rate=(0.006 + 0.012 * u[7]) * (0.25 if snapshot else 1.0),
        spike_size=0.1 if snapshot else 1.0,
        streams=_stream_keys(
            [key ^ 0x1, key ^ 0x4, key ^ 0x2, key ^ 0x3]
            if count
            else [key ^ 0x1, key ^ 0x2, key ^ 0x3],
            2 if count else 1,
        ),
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
    columns = np.array(  # one array, each parameter a column of it
        [-0.55 * i + 0.8 * (u[i] - 0.5) for i in range(k)]
        + [0.05 + 0.25 * v for v in u[k : 2 * k]]
        + [180.0 + 540.0 * v for v in u[2 * k : 3 * k]]
        + [2 * math.pi * v for v in u[3 * k : 4 * k]]
        + [0.3 * (v - 0.5) for v in u[4 * k : 5 * k]],
        dtype=np.float64,
    ).reshape(5, k, 1)
    logit, amp, period, phase, trend = columns
    return _SliceParams(
        key=key,
        names=names,
        logit=logit,
        amp=amp,
        period=period,
        phase=phase,
        trend=trend,
        noise=0.03 + 0.05 * u[5 * k],
        streams=_stream_keys([key ^ (i + 1) * 0x9E37 for i in range(k)], k),
        ranks=np.arange(k, dtype=np.int64)[:, None],
    )


# --------------------------------------------------------------------------- generation


def base_days(p: SeriesParams, lay: Layout) -> FloatArray:
    """Return the base series' day values (rounded as the kind requires) for ``lay.days``."""
    expected = p.growth * lay.years
    expected += 1.0
    np.maximum(expected, 0.2, out=expected)
    expected *= p.level
    expected *= p.weekly[lay.weekdays]
    yearly = np.sin(lay.yearly_angles + p.yearly_phase)
    yearly *= p.yearly_amp
    yearly += 1.0
    expected *= yearly
    count = p.kind == "count"
    u = _uniforms(p.streams, lay.golden)
    normals = _normals(u, 2 if count else 1)
    z: FloatArray = normals[0]
    u_spike, size = u[-2], u[-1]
    if p.kind == "rate":
        noisy = p.noise * z
        noisy += 1.0
        expected *= noisy
        _spike(expected, u_spike, size, p)
        return _f64(np.round(np.clip(expected, 0.001, 0.999, out=expected), 4))
    expected *= np.exp(p.noise * z)
    _spike(expected, u_spike, size, p)
    if count:
        poisson: FloatArray = np.maximum(expected, 0.0)
        np.sqrt(poisson, out=poisson)
        poisson *= normals[1]
        poisson += expected
        np.rint(poisson, out=poisson)
        return np.maximum(poisson, 0.0, out=poisson)
    rounded: FloatArray = np.round(expected, 2)
    return np.maximum(rounded, 0.0, out=rounded)


def _spike(values: FloatArray, u_spike: FloatArray, size: FloatArray, p: SeriesParams) -> None:
    """Multiply the values of the days with a spike (up, or for flows down) by its factor,
    in place: a few days a series, so one by one in Python floats (the same IEEE operations
    as on arrays); every other day's factor is 1 and ``x * 1.0 == x``, so they are skipped."""
    rate = p.kind == "rate"
    factors: dict[int, float] = {}
    for i in (u_spike < p.spike_rate).nonzero()[0].tolist():
        s = float(size[i])
        factors[i] = 1.15 + 0.2 * s if rate else 1.0 + p.spike_size * (0.4 + 1.2 * s)
    if not rate:  # a drop wins over a rise on the same day
        for i in (u_spike > 1.0 - p.spike_rate / 3.0).nonzero()[0].tolist():
            factors[i] = 1.0 - p.spike_size * (0.35 + 0.2 * float(size[i]))
    for i, factor in factors.items():
        values[i] *= factor


def _shares(s: _SliceParams, lay: Layout, noise_scale: float = 1.0) -> FloatArray:
    """Return slice shares, shape (slices, days), each column summing to 1."""
    logits = s.trend * lay.years
    logits += s.logit
    angles = lay.angles / s.period
    angles += s.phase
    drift = np.sin(angles)
    drift *= s.amp
    logits += drift
    noise = _normals(_uniforms(s.streams, lay.golden), len(s.names))
    noise *= s.noise * noise_scale
    logits += noise
    logits -= np.maximum.reduce(logits, axis=0)  # what ndarray.max(axis=0) computes
    weights = np.exp(logits)
    weights /= np.add.reduce(weights, axis=0)  # what ndarray.sum(axis=0) computes
    return weights


def _allocate(total: FloatArray, shares: FloatArray, s: _SliceParams, lay: Layout) -> FloatArray:
    """Split integer totals by shares into integers that sum exactly (largest remainder)."""
    raw = shares * total
    floor = np.floor(raw)
    missing = np.add.reduce(floor, axis=0)
    np.subtract(total, missing, out=missing)
    np.rint(missing, out=missing)
    order = np.argsort(floor - raw, axis=0)  # largest fractional part first
    ranks = np.empty_like(order)  # each slice's place in that order (the inverse permutation)
    ranks[order, lay.positions] = s.ranks
    floor += ranks < missing  # one more for the first ``missing`` of that order
    return floor


def slice_days(p: SeriesParams, s: _SliceParams, base: FloatArray, lay: Layout) -> FloatArray:
    """Return the slices' day values, shape (slices, days); counts and money split the base."""
    shares = _shares(s, lay, 0.2 if p.mean and p.kind != "rate" else 1.0)
    if p.kind == "rate":
        # A rate does not split: each slice deviates from it; the share-weighted mean ≈ base.
        logits = np.log(shares)
        centred = logits - np.add.reduce(shares * logits, axis=0)
        np.clip(centred, -3.0, 3.0, out=centred)
        centred *= 0.12
        values = np.exp(centred)
        values *= base
        return _f64(np.round(np.clip(values, 0.0, 1.0, out=values), 4))
    if p.kind == "count":
        return _allocate(base, shares, s, lay)
    cents = base * 100.0
    np.rint(cents, out=cents)
    split = _allocate(cents, shares, s, lay)  # in cents: slices add up
    split /= 100.0
    return split
