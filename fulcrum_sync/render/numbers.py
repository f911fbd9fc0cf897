"""Numbers for people: thousands separators, sensible decimals, percentages, sparklines."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

# Pattern results store fractions (0.053 is 5.3%). Keys that end in ``_pct`` or are named here
# are shown as percentages; the signed ones are changes (+5.3%), the rest shares (53.3%).
_SIGNED_PCT = {
    "growth",
    "latest_growth",
    "average_growth",
    "compound_growth",
    "relative_slope",
}
_PLAIN_PCT = {"share", "prior_share", "probability_on_target", "confidence", "threshold"}
# Differences of two fractions: percentage points.
_POINTS = {"share_change", "acceleration", "average_acceleration"}

SPARK_BLOCKS = "▁▂▃▄▅▆▇█"


def format_int(value: int) -> str:
    """``12345`` -> ``12,345``."""
    return f"{value:,}"


def format_number(value: float | int | None) -> str:
    """A number to read, not to parse: ``21,738``, ``12.35``, ``0.00123``; empty for None."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return format_int(value)
    if not math.isfinite(value):
        return str(value)
    size = abs(value)
    if size >= 100:
        return f"{value:,.0f}"
    if size >= 1:
        return f"{value:,.2f}"
    if size == 0:
        return "0"
    return f"{value:.3g}"


def format_value(value: float | None) -> str:
    """A stored value as stored, made readable: ``22,391.92``, ``0.0345``; up to 4 decimals."""
    if value is None:
        return ""
    if not math.isfinite(value):
        return str(value)
    text = f"{value:,.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def format_pct(fraction: float | None, *, signed: bool = False) -> str:
    """A fraction as a percentage: ``-0.0595`` -> ``-6.0%``; tiny non-zero values ``<0.1%``."""
    if fraction is None:
        return ""
    pct = fraction * 100
    if pct != 0 and abs(pct) < 0.05:
        sign = ("+" if pct > 0 else "-") if signed else ("-" if pct < 0 else "")
        return f"{sign}<0.1%"
    return f"{pct:+,.1f}%" if signed else f"{pct:,.1f}%"


def format_points(fraction: float | None) -> str:
    """A difference of two fractions in percentage points: ``0.0176`` -> ``+1.8 pp``."""
    if fraction is None:
        return ""
    points = fraction * 100
    if points != 0 and abs(points) < 0.05:
        return f"{'+' if points > 0 else '-'}<0.1 pp"
    return f"{points:+,.1f} pp"


def format_field(key: str, value: Any) -> str:
    """Format one named value of a pattern result by what its name says it holds."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        if key.endswith("_pct") or key in _SIGNED_PCT:
            return format_pct(float(value), signed=True)
        if key in _PLAIN_PCT:
            return format_pct(float(value))
        if key in _POINTS:
            return format_points(float(value))
        return format_number(value)
    return str(value)


def sparkline(values: Sequence[float | None]) -> str:
    """One character per value, from ▁ (lowest) to █ (highest); a gap for a missing value."""
    present = [v for v in values if v is not None and math.isfinite(v)]
    if not present:
        return ""
    low, high = min(present), max(present)
    span = high - low
    top = len(SPARK_BLOCKS) - 1
    out = []
    for v in values:
        if v is None or not math.isfinite(v):
            out.append(" ")
        elif span == 0:
            out.append(SPARK_BLOCKS[top // 2])
        else:
            out.append(SPARK_BLOCKS[round((v - low) / span * top)])
    return "".join(out)
