"""Grains, periods, windows and lookbacks: the calendar every command works in."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from fulcrum_sync.domain.errors import InputError
from fulcrum_sync.domain.grains import (
    DATE_RE,
    DEFAULT_LOOKBACK,
    GRAIN_ALIASES,
    GRAINS,
    Grain,
    SyncType,
    period_forms,
)

__all__ = [  # the table's names, re-exported for the modules that import them from here
    "DEFAULT_LOOKBACK",
    "GRAINS",
    "GRAIN_ALIASES",
    "Grain",
    "SyncType",
]

# --------------------------------------------------------------------------- periods


def _month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


def period_start(grain: Grain, day: date) -> date:
    """Return the first day of the period of ``grain`` that contains ``day``."""
    rules = GRAINS[grain]
    if rules.unit == "days":  # date.min (0001-01-01) is a Monday: weeks align on it
        return day - timedelta(days=(day.toordinal() - 1) % rules.step)
    months = _month_index(day)
    months -= months % rules.step
    return date(months // 12, months % 12 + 1, 1)


def shift_period(grain: Grain, start: date, n: int) -> date:
    """Return the start of the period ``n`` periods after (or before, n < 0) ``start``."""
    rules = GRAINS[grain]
    start = period_start(grain, start)
    if rules.unit == "days":
        return start + timedelta(days=n * rules.step)
    months = _month_index(start) + n * rules.step
    return date(months // 12, months % 12 + 1, 1)


def period_end(grain: Grain, start: date) -> date:
    """Return the last day of the period that starts at (or contains) ``start``."""
    return shift_period(grain, start, 1) - timedelta(days=1)


def _label_grain(raw: str) -> Grain | None:
    """The grain whose label form ``raw`` has (``2025-W28``: week), None for anything else."""
    for grain, rules in GRAINS.items():
        if rules.label_re is not None and rules.label_re.match(raw):
            return grain
    return None


def parse_period(grain: Grain, text: str) -> date:
    """Parse a date (``2025-07-13``) or the grain's label (``2025-W28``, ``2025-07``,
    ``2025-Q3``) and return the period start.

    Raises InputError naming the bad value and the accepted forms.
    """
    raw = str(text).strip()
    labelled = _label_grain(raw)
    try:
        if labelled is not None:
            rules = GRAINS[labelled]
            match = rules.label_re.match(raw) if rules.label_re else None
            assert match is not None and rules.from_label is not None
            day = rules.from_label(match)
        elif DATE_RE.match(raw):
            day = date.fromisoformat(raw)
        else:
            raise ValueError(raw)
    except ValueError:
        raise InputError(f"invalid period {text!r}: expected {period_forms()}") from None
    if labelled is not None and labelled is not grain:
        # Only the grain's own label: a week can straddle two months, a month is not a week.
        rules = GRAINS[grain]
        either = f"{rules.form} or a date" if rules.label_re else rules.form
        raise InputError(f"invalid period {text!r} for grain {grain.value}: expected {either}")
    return period_start(grain, day)


def parse_span(text: str) -> tuple[date, date]:
    """Return the days ``text`` covers: a date itself, an ISO week Monday..Sunday, a month,
    a quarter.

    Raises InputError naming the bad value and the accepted forms.
    """
    raw = str(text).strip()
    grain = _label_grain(raw) or Grain.DAY
    first = parse_period(grain, raw)
    return first, period_end(grain, first)


def iter_periods(grain: Grain, start: date, end: date) -> Iterator[date]:
    """Yield the start of every period from the one containing ``start`` to ``end``, inclusive."""
    rules = GRAINS[grain]
    first, last = period_start(grain, start), period_start(grain, end)
    if rules.unit == "days":  # ordinals: no calendar arithmetic per period
        for ordinal in range(first.toordinal(), last.toordinal() + 1, rules.step):
            yield date.fromordinal(ordinal)
        return
    for months in range(_month_index(first), _month_index(last) + 1, rules.step):
        yield date(months // 12, months % 12 + 1, 1)


def last_complete_period(grain: Grain, now: datetime | None = None) -> date:
    """Return the start of the last period of ``grain`` that ended before ``now`` (UTC).

    :param now: the current time (default: the clock); naive means UTC.
    """
    now = now or datetime.now(UTC)
    today = now.astimezone(UTC).date() if now.tzinfo else now.date()
    return shift_period(grain, period_start(grain, today), -1)


def period_label(grain: Grain, start: date) -> str:
    """A period as commands take it: ``2025-07-13``, ``2025-W28``, ``2025-07``, ``2025-Q3``."""
    return GRAINS[grain].label(start)


def format_period(grain: Grain, start: date) -> str:
    """Render a period for people: ``2025-07-13``, ``2025-W28 (2025-07-07)``, ``2025-07``,
    ``2025-Q3``."""
    label = period_label(grain, start)
    return f"{label} ({start.isoformat()})" if GRAINS[grain].show_start else label


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
    lookback: Mapping[Grain, Mapping[SyncType, int]] | None = None,
) -> Window:
    """Return the fetch window: ends on the period's last day, starts ``lookback`` periods before.

    The window never starts before the period containing ``history_start``.
    """
    periods = (lookback or DEFAULT_LOOKBACK)[grain][sync_type]
    return _window(grain, period, periods, history_start)


@functools.lru_cache(maxsize=1024)
def _window(grain: Grain, period: date, periods: int, history_start: date) -> Window:
    # A run computes the same few windows for every context and series: each once.
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


def period_examples(day: date = date(2025, 7, 13)) -> str:
    """``2025-07-13, 2025-W28, 2025-07 or 2025-Q3``: the period of each grain holding ``day``,
    as commands take it (for help texts)."""
    labels = [period_label(g, period_start(g, day)) for g in Grain]
    return f"{', '.join(labels[:-1])} or {labels[-1]}"
