"""Every per-grain rule in one table: ``GRAINS[grain]`` (SPEC §1).

Period arithmetic and labels, lookbacks (SPEC §3), the catch-up bound, the Cube granularity,
the pattern windows, the demo's days per period, the schedule and the status freshness all
read this table; nothing else in fulcrum-sync keeps a per-grain table or branches on a grain.
Adding a grain is adding a ``Grain`` member and its row here (tests/test_grain_table.py fails
while a row or a field is missing), then its metrics in a catalog and its scheduled job.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from types import MappingProxyType
from typing import Literal

from fulcrum_sync.domain.errors import InputError


class Grain(StrEnum):
    """A grain, finest first (the order of this enum is the order of ``GRAINS``)."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"

    @classmethod
    def parse(cls, value: str | Grain) -> Grain:
        """Return the grain for ``value`` (``day``/``daily``, ...); raise InputError otherwise."""
        if isinstance(value, Grain):
            return value
        text = str(value).strip().lower()
        text = GRAIN_ALIASES.get(text, text)
        try:
            return cls(text)
        except ValueError:
            raise InputError(
                f"unknown grain {value!r}: expected one of {grain_names()} "
                f"(or {', '.join(GRAIN_ALIASES)})"
            ) from None


class SyncType(StrEnum):
    FULL = "FULL"
    INCREMENTAL = "INCREMENTAL"


@dataclass(frozen=True, slots=True)
class PatternWindows:
    """A grain's default pattern windows, in periods of the grain.

    :param status_lookback: history ``performance_status`` reads.
    :param streak_lookback: history ``historical_performance`` reads at least (its streaks).
    :param quality_window: ``data_quality``'s rolling baseline.
    :param quality_scan: periods ``data_quality`` scans.
    :param forecast_min_history: periods ``forecasting`` needs at least.
    :param forecast_season: ``forecasting``'s seasonal period (0: none).
    """

    status_lookback: int
    streak_lookback: int
    quality_window: int
    quality_scan: int
    forecast_min_history: int
    forecast_season: int


@dataclass(frozen=True, slots=True)
class GrainRules:
    """Everything that differs between grains.

    :param aliases: other names accepted on input (``daily``).
    :param unit: periods are counted in ``days`` or ``months``.
    :param step: units per period; periods are aligned on multiples of it (weeks on Mondays,
        quarters on January, April, July and October).
    :param label: a period as commands take it (``2025-W28``).
    :param label_re: the label form, besides a date, ``--period`` accepts (None: dates only).
    :param from_label: the period start a ``label_re`` match names (may raise ValueError).
    :param form: the accepted label form in messages (``an ISO week (2025-W28)``).
    :param show_start: people see the first day beside the label (weeks: ISO week numbers
        differ from the old system's).
    :param lookback_full: periods a FULL sync fetches (SPEC §3).
    :param lookback_incremental: periods an INCREMENTAL sync fetches (SPEC §3).
    :param catch_up_periods: periods one ``sync --catch-up`` takes per context by default;
        beyond them a backfill is the tool.
    :param cube_granularity: the Cube time dimension granularity.
    :param pandas_freq: the pandas frequency of period starts (``date_range``).
    :param pandas_period: the pandas period that snaps a date to its period (None: days).
    :param mean_days: the average days in a period (the demo scales day values by it).
    :param schedule: the cron schedule (UTC) of the scheduled sync (k8s/ and crontab).
    :param patterns: the default pattern windows.
    """

    aliases: tuple[str, ...]
    unit: Literal["days", "months"]
    step: int
    label: Callable[[date], str]
    label_re: re.Pattern[str] | None
    from_label: Callable[[re.Match[str]], date] | None
    form: str
    show_start: bool
    lookback_full: int
    lookback_incremental: int
    catch_up_periods: int
    cube_granularity: str
    pandas_freq: str
    pandas_period: str | None
    mean_days: float
    schedule: str
    patterns: PatternWindows

    def lookback(self, sync_type: SyncType) -> int:
        """Periods a sync of ``sync_type`` fetches."""
        return self.lookback_full if sync_type is SyncType.FULL else self.lookback_incremental


# ASCII digits only (``\d`` alone would take any script's digits), whole string (``\Z``: no
# trailing newline slips through as ``$`` would let it).
DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}\Z", re.ASCII)


def _week_label(start: date) -> str:
    iso = start.isocalendar()
    return f"{iso.year}-W{iso.week:02d}"


GRAINS: Mapping[Grain, GrainRules] = MappingProxyType(
    {
        Grain.DAY: GrainRules(
            aliases=("daily",),
            unit="days",
            step=1,
            label=date.isoformat,
            label_re=None,
            from_label=None,
            form="a date (2025-07-13)",
            show_start=False,
            lookback_full=365,
            lookback_incremental=90,
            catch_up_periods=14,  # two weeks of days
            cube_granularity="day",
            pandas_freq="D",
            pandas_period=None,
            mean_days=1.0,
            schedule="0 10 * * *",
            patterns=PatternWindows(
                status_lookback=90,
                streak_lookback=90,
                quality_window=28,
                quality_scan=90,
                forecast_min_history=14,
                forecast_season=7,
            ),
        ),
        Grain.WEEK: GrainRules(
            aliases=("weekly",),
            unit="days",
            step=7,
            label=_week_label,
            label_re=re.compile(r"(\d{4})-W(\d{1,2})\Z", re.IGNORECASE | re.ASCII),
            from_label=lambda m: date.fromisocalendar(int(m[1]), int(m[2]), 1),
            form="an ISO week (2025-W28)",
            show_start=True,
            lookback_full=104,
            lookback_incremental=24,
            catch_up_periods=8,  # two months of weeks
            cube_granularity="week",
            pandas_freq="W-MON",
            pandas_period="W-SUN",
            mean_days=7.0,
            schedule="0 11 * * 1",
            patterns=PatternWindows(
                status_lookback=52,
                streak_lookback=52,
                quality_window=12,
                quality_scan=26,
                forecast_min_history=8,
                forecast_season=0,
            ),
        ),
        Grain.MONTH: GrainRules(
            aliases=("monthly",),
            unit="months",
            step=1,
            label=lambda start: f"{start.year}-{start.month:02d}",
            label_re=re.compile(r"(\d{4})-(\d{1,2})\Z", re.ASCII),
            from_label=lambda m: date(int(m[1]), int(m[2]), 1),
            form="a month (2025-07)",
            show_start=False,
            lookback_full=60,
            lookback_incremental=12,
            catch_up_periods=3,  # a quarter of months
            cube_granularity="month",
            pandas_freq="MS",
            pandas_period="M",
            mean_days=30.44,
            schedule="0 12 1 * *",
            patterns=PatternWindows(
                status_lookback=24,
                streak_lookback=24,
                quality_window=6,
                quality_scan=12,
                forecast_min_history=6,
                forecast_season=12,
            ),
        ),
        Grain.QUARTER: GrainRules(
            aliases=("quarterly",),
            unit="months",
            step=3,
            label=lambda start: f"{start.year}-Q{(start.month - 1) // 3 + 1}",
            label_re=re.compile(r"(\d{4})-Q([1-4])\Z", re.IGNORECASE | re.ASCII),
            from_label=lambda m: date(int(m[1]), 3 * int(m[2]) - 2, 1),
            form="a quarter (2025-Q3)",
            show_start=False,
            lookback_full=20,
            lookback_incremental=4,
            catch_up_periods=4,  # a year of quarters
            cube_granularity="quarter",
            pandas_freq="QS-JAN",
            pandas_period="Q-DEC",
            mean_days=91.31,
            schedule="0 13 1 1,4,7,10 *",
            patterns=PatternWindows(
                status_lookback=12,
                streak_lookback=12,
                quality_window=4,
                quality_scan=8,
                forecast_min_history=8,
                forecast_season=4,
            ),
        ),
    }
)

GRAIN_ALIASES: Mapping[str, str] = MappingProxyType(
    {alias: grain.value for grain, rules in GRAINS.items() for alias in rules.aliases}
)

# The lookback table (SPEC §3) in the shape settings override it in.
DEFAULT_LOOKBACK: Mapping[Grain, Mapping[SyncType, int]] = MappingProxyType(
    {g: {t: r.lookback(t) for t in SyncType} for g, r in GRAINS.items()}
)


def coarser_grains(grain: Grain) -> list[Grain]:
    """The grains coarser than ``grain``, finest first (``Grain`` is ordered finest first)."""
    order = list(Grain)
    return order[order.index(grain) + 1 :]


def grain_names(conjunction: str = "or") -> str:
    """``day, week, month or quarter``: the grains for help texts and messages."""
    names = [g.value for g in Grain]
    return f"{', '.join(names[:-1])} {conjunction} {names[-1]}"


def period_forms() -> str:
    """``a date (2025-07-13), an ISO week (2025-W28), ... or a quarter (2025-Q3)``."""
    forms = [r.form for r in GRAINS.values()]
    return f"{', '.join(forms[:-1])} or {forms[-1]}"
