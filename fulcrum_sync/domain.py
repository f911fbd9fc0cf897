"""Grains, periods, contexts, run keys, windows and the exception tree.

Exceptions::

    FulcrumError
    ├── InputError          bad usage: unknown grain, tenant, metric, period; bad flags (exit 2)
    └── DependencyError     something we depend on failed (exit 3 when nothing could be done)
        ├── SourceError     the semantic layer (Cube) or the demo generator
        ├── StoreError      the state database
        └── SinkError       the cache (Snowflake or local)

This module imports neither the store nor the CLI.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

# --------------------------------------------------------------------------- errors


class FulcrumError(Exception):
    """Base of every error fulcrum-sync raises on purpose."""


class InputError(FulcrumError):
    """Bad usage or configuration: nothing was done (exit code 2)."""


class DependencyError(FulcrumError):
    """A dependency (source, database, cache) failed (exit code 3 if nothing could be done)."""


class SourceError(DependencyError):
    """The semantic source failed or refused a query."""


class StoreError(DependencyError):
    """The state database failed."""


class SinkError(DependencyError):
    """The cache target failed."""


# --------------------------------------------------------------------------- grains

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

_WEEK_RE = re.compile(r"^(\d{4})-W(\d{1,2})$", re.IGNORECASE)
_MONTH_RE = re.compile(r"^(\d{4})-(\d{1,2})$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


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


def iter_periods(grain: Grain, start: date, end: date) -> Iterator[date]:
    """Yield the start of every period from the one containing ``start`` to ``end``, inclusive."""
    current = period_start(grain, start)
    last = period_start(grain, end)
    while current <= last:
        yield current
        current = shift_period(grain, current, 1)


def last_complete_period(grain: Grain, now: datetime | None = None) -> date:
    """Return the start of the last period of ``grain`` that ended before ``now`` (UTC)."""
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
    start = shift_period(grain, period, -(periods - 1))
    start = max(start, period_start(grain, history_start))
    return Window(start, period_end(grain, period))


# --------------------------------------------------------------------------- contexts

_PART_RE = re.compile(r"[A-Za-z0-9_.\-]+")


def _split_context(text: str, parts: int, example: str) -> list[str]:
    pieces = str(text).split("::")
    if len(pieces) != parts or not all(pieces):
        raise InputError(
            f"invalid context {text!r}: expected {parts} non-empty parts joined by '::' "
            f"(e.g. {example})"
        )
    for piece in pieces:
        if not _PART_RE.fullmatch(piece):
            raise InputError(
                f"invalid context {text!r}: part {piece!r} may hold only letters, digits, "
                "'_', '-' and '.'"
            )
    return pieces


@dataclass(frozen=True, slots=True, order=True)
class MetricContext:
    """One tenant's metric: ``acme::new_revenue``."""

    tenant: str
    metric: str

    @classmethod
    def from_string(cls, text: str) -> MetricContext:
        tenant, metric = _split_context(text, 2, "acme::new_revenue")
        return cls(tenant, metric)

    def to_string(self) -> str:
        return f"{self.tenant}::{self.metric}"

    def __str__(self) -> str:
        return self.to_string()


@dataclass(frozen=True, slots=True, order=True)
class PatternContext:
    """A metric context plus a pattern: ``acme::new_revenue::performance_status``."""

    tenant: str
    metric: str
    pattern: str

    @classmethod
    def from_string(cls, text: str) -> PatternContext:
        tenant, metric, pattern = _split_context(text, 3, "acme::new_revenue::performance_status")
        return cls(tenant, metric, pattern)

    @property
    def metric_context(self) -> MetricContext:
        return MetricContext(self.tenant, self.metric)

    def to_string(self) -> str:
        return f"{self.tenant}::{self.metric}::{self.pattern}"

    def __str__(self) -> str:
        return self.to_string()


def sync_run_key(grain: Grain, period: date, context: MetricContext) -> str:
    """Return ``sync:{grain}:{period}:{tenant}::{metric}``."""
    return f"sync:{grain.value}:{period.isoformat()}:{context.to_string()}"


def pattern_run_key(
    grain: Grain, period: date, context: PatternContext, dimension: str | None = None
) -> str:
    """Return ``pattern:{grain}:{period}:{tenant}::{metric}::{pattern}`` (``:{dimension}``)."""
    key = f"pattern:{grain.value}:{period.isoformat()}:{context.to_string()}"
    return f"{key}:{dimension}" if dimension else key


# --------------------------------------------------------------------------- requests/results


@dataclass(frozen=True, slots=True)
class SyncRequest:
    """What ``sync`` was asked to do; built (and validated) by the CLI before any I/O."""

    grain: Grain
    period: date
    tenant: str | None = None
    metric: str | None = None
    force_full: bool = False
    force: bool = False
    workers: int = 1
    dry_run: bool = False
    run_patterns: bool = True


@dataclass(slots=True)
class SkipCounts:
    """Rows the sanitizer skipped, by reason."""

    null_value: int = 0
    non_finite: int = 0
    null_slice: int = 0
    duplicate: int = 0

    @property
    def total(self) -> int:
        return self.null_value + self.non_finite + self.null_slice + self.duplicate


@dataclass(slots=True)
class SeriesResult:
    """One series' sync: the base series (``dimension`` None) or one dimension's."""

    dimension: str | None
    sync_type: SyncType
    window: Window
    rows_fetched: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: SkipCounts = field(default_factory=SkipCounts)
    success: bool = True
    error: str | None = None
    dependency_failure: bool = False  # failed because the source or database did

    @property
    def rows_stored(self) -> int:
        return self.inserted + self.updated


@dataclass(slots=True)
class PatternRunResult:
    """One pattern run for a context and period (``dimension`` set for per-dimension ones)."""

    pattern: str
    dimension: str | None
    status: str  # succeeded | skipped | failed | done (already ran) | busy
    run_key: str
    error: str | None = None


@dataclass(slots=True)
class ContextResult:
    """One context's sync for one period, with its patterns."""

    context: MetricContext
    grain: Grain
    period: date
    run_key: str
    status: str  # succeeded | partial | failed | skipped
    skip_reason: str | None = None
    base: SeriesResult | None = None
    dimensions: list[SeriesResult] = field(default_factory=list)
    patterns: list[PatternRunResult] = field(default_factory=list)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    dependency_failure: bool = False

    @property
    def duration_seconds(self) -> float:
        if self.started_at is None or self.finished_at is None:
            return 0.0
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def series(self) -> list[SeriesResult]:
        return ([self.base] if self.base else []) + self.dimensions

    @property
    def sync_types(self) -> str:
        kinds = sorted({s.sync_type.value for s in self.series})
        return "/".join(kinds) if kinds else "-"

    @property
    def rows_stored(self) -> int:
        return sum(s.rows_stored for s in self.series)

    @property
    def rows_skipped(self) -> int:
        return sum(s.skipped.total for s in self.series)

    @property
    def dimensions_failed(self) -> list[str]:
        return [s.dimension or "" for s in self.dimensions if not s.success]

    def pattern_counts(self) -> dict[str, int]:
        counts = {"succeeded": 0, "skipped": 0, "failed": 0}
        for p in self.patterns:
            key = p.status if p.status in counts else "skipped"
            counts[key] += 1
        return counts


@dataclass(slots=True)
class SyncRunResult:
    """A whole ``sync`` invocation."""

    run_id: str | None
    request: SyncRequest
    contexts: list[ContextResult] = field(default_factory=list)
    interrupted: bool = False
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def failed(self) -> list[ContextResult]:
        return [
            c
            for c in self.contexts
            if c.status in ("failed", "partial") or c.pattern_counts()["failed"]
        ]

    @property
    def outcome(self) -> str:
        if self.interrupted:
            return "interrupted"
        attempted = [c for c in self.contexts if c.status != "skipped"]
        if attempted and all(c.status == "failed" and c.dependency_failure for c in attempted):
            return "failed"
        return "partial" if self.failed else "succeeded"
