"""Grains, periods, windows and lookbacks: the calendar every command works in."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from fulcrum_sync.domain.errors import InputError

GRAIN_ALIASES = {"daily": "day", "weekly": "week", "monthly": "month"}


class Grain(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"

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
            valid = ", ".join(g.value for g in cls)
            raise InputError(
                f"unknown grain {value!r}: expected one of {valid} (or daily, weekly, monthly)"
            ) from None


class SyncType(StrEnum):
    FULL = "FULL"
    INCREMENTAL = "INCREMENTAL"


# Lookback in periods of the grain, per sync type (SPEC §3).
DEFAULT_LOOKBACK: dict[Grain, dict[SyncType, int]] = {
    Grain.DAY: {SyncType.FULL: 365, SyncType.INCREMENTAL: 90},
    Grain.WEEK: {SyncType.FULL: 104, SyncType.INCREMENTAL: 24},
    Grain.MONTH: {SyncType.FULL: 60, SyncType.INCREMENTAL: 12},
}

# --------------------------------------------------------------------------- periods

# ASCII digits only (``\d`` alone would take any script's digits), whole string (``\Z``: no
# trailing newline slips through as ``$`` would let it).
_WEEK_RE = re.compile(r"(\d{4})-W(\d{1,2})\Z", re.IGNORECASE | re.ASCII)
_MONTH_RE = re.compile(r"(\d{4})-(\d{1,2})\Z", re.ASCII)
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}\Z", re.ASCII)


def period_start(grain: Grain, day: date) -> date:
    """Return the first day of the period of ``grain`` that contains ``day``."""
    if grain is Grain.DAY:
        return day
    if grain is Grain.WEEK:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def shift_period(grain: Grain, start: date, n: int) -> date:
    """Return the start of the period ``n`` periods after (or before, n < 0) ``start``."""
    start = period_start(grain, start)
    if grain is Grain.DAY:
        return start + timedelta(days=n)
    if grain is Grain.WEEK:
        return start + timedelta(weeks=n)
    months = start.year * 12 + (start.month - 1) + n
    return date(months // 12, months % 12 + 1, 1)


def period_end(grain: Grain, start: date) -> date:
    """Return the last day of the period that starts at (or contains) ``start``."""
    return shift_period(grain, start, 1) - timedelta(days=1)


def parse_period(grain: Grain, text: str) -> date:
    """Parse ``2025-07-13``, ``2025-W28`` or ``2025-07`` and return the period start.

    Raises InputError naming the bad value and the accepted forms.
    """
    raw = str(text).strip()
    expected = "expected a date (2025-07-13), an ISO week (2025-W28) or a month (2025-07)"
    try:
        if m := _WEEK_RE.match(raw):
            day = date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
        elif m := _MONTH_RE.match(raw):
            day = date(int(m.group(1)), int(m.group(2)), 1)
        elif _DATE_RE.match(raw):
            day = date.fromisoformat(raw)
        else:
            raise ValueError(raw)
    except ValueError:
        raise InputError(f"invalid period {text!r}: {expected}") from None
    if grain is Grain.DAY and not _DATE_RE.match(raw):
        raise InputError(f"invalid period {text!r} for grain day: expected a date (2025-07-13)")
    if grain is Grain.WEEK and _MONTH_RE.match(raw):
        raise InputError(
            f"invalid period {text!r} for grain week: expected an ISO week (2025-W28) or a date"
        )
    if grain is Grain.MONTH and _WEEK_RE.match(raw):
        # A week can straddle two months: refuse rather than guess.
        raise InputError(
            f"invalid period {text!r} for grain month: expected a month (2025-07) or a date"
        )
    return period_start(grain, day)


def parse_span(text: str) -> tuple[date, date]:
    """Return the days ``text`` covers: a date itself, an ISO week Monday..Sunday, a month.

    Raises InputError naming the bad value and the accepted forms.
    """
    raw = str(text).strip()
    grain = Grain.WEEK if _WEEK_RE.match(raw) else Grain.MONTH if _MONTH_RE.match(raw) else None
    first = parse_period(grain or Grain.DAY, raw)
    return first, period_end(grain, first) if grain else first


def iter_periods(grain: Grain, start: date, end: date) -> Iterator[date]:
    """Yield the start of every period from the one containing ``start`` to ``end``, inclusive."""
    current = period_start(grain, start)
    last = period_start(grain, end)
    while current <= last:
        yield current
        current = shift_period(grain, current, 1)


def last_complete_period(grain: Grain, now: datetime | None = None) -> date:
    """Return the start of the last period of ``grain`` that ended before ``now`` (UTC).

    :param now: the current time (default: the clock); naive means UTC.
    """
    now = now or datetime.now(UTC)
    today = now.astimezone(UTC).date() if now.tzinfo else now.date()
    return shift_period(grain, period_start(grain, today), -1)


def format_period(grain: Grain, start: date) -> str:
    """Render a period for people: ``2025-07-13``, ``2025-W28 (2025-07-07)``, ``2025-07``."""
    if grain is Grain.DAY:
        return start.isoformat()
    if grain is Grain.WEEK:
        iso = start.isocalendar()
        return f"{iso.year}-W{iso.week:02d} ({start.isoformat()})"
    return f"{start.year}-{start.month:02d}"


@dataclass(frozen=True, slots=True)
class Window:
    """An inclusive date window ``[start, end]``."""

    start: date
    end: date

    def to_string(self) -> str:
        return f"{self.start.isoformat()}..{self.end.isoformat()}"


def compute_window(
    grain: Grain,
    period: date,
    sync_type: SyncType,
    history_start: date,
    lookback: dict[Grain, dict[SyncType, int]] | None = None,
) -> Window:
    """Return the fetch window: ends on the period's last day, starts ``lookback`` periods before.

    The window never starts before the period containing ``history_start``.
    """
    periods = (lookback or DEFAULT_LOOKBACK)[grain][sync_type]
    try:
        start = shift_period(grain, period, -(periods - 1))
    except (OverflowError, ValueError):  # a lookback longer than the calendar
        start = date.min
    start = max(start, period_start(grain, history_start))
    return Window(start, period_end(grain, period))


def check_history(grain: Grain, period: date, history_start: date, what: str = "period") -> None:
    """Refuse a period before the one containing ``history_start`` (InputError names both)."""
    first = period_start(grain, history_start)
    if period < first:
        raise InputError(
            f"{what} {format_period(grain, period)} is before the history start "
            f"{history_start.isoformat()} (first {grain.value} period {first.isoformat()}; "
            "FULCRUM_SYNC_HISTORY_START)"
        )


def check_not_after(
    grain: Grain, period: date, now: datetime | None = None, what: str = "period"
) -> None:
    """Refuse a period after the last complete one (InputError names it): no invented future.

    :param now: the current time (default: the clock; FULCRUM_SYNC_TODAY moves it).
    """
    now = now or datetime.now(UTC)
    last = last_complete_period(grain, now)
    if period > last:
        today = now.astimezone(UTC).date() if now.tzinfo else now.date()
        raise InputError(
            f"{what} {format_period(grain, period)} is not over yet: the last complete "
            f"{grain.value} is {format_period(grain, last)} (today is {today.isoformat()} UTC)"
        )


def check_period(
    grain: Grain,
    period: date,
    history_start: date,
    now: datetime | None = None,
    what: str = "period",
) -> None:
    """Refuse a period after the last complete one or before the history start."""
    check_not_after(grain, period, now, what)
    check_history(grain, period, history_start, what)
