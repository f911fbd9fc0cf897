"""What ``state show``, ``state reset`` and ``series show`` are asked and what they report."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from fulcrum_sync.domain.errors import InputError
from fulcrum_sync.domain.periods import Grain, parse_period, parse_span

# What ``state reset --what`` accepts, and the records each one clears (the parts below).
RESET_WHATS: dict[str, tuple[str, ...]] = {
    # No sync status row means the next sync of the series is FULL.
    "sync-status": ("sync status",),
    # An absent run key is claimable: the next run covering its period does it again.
    "run-keys": ("sync keys", "pattern keys"),
    # Dropped values come back only with a FULL sync: the series' sync status goes too.
    "series": ("base values", "dimension values", "sync status"),
    # A result without its succeeded key would never be recomputed: the keys go too.
    "patterns": ("pattern results", "pattern keys"),
    "cache": ("cache loads",),
}
WHAT_CHOICES = (*RESET_WHATS, "all")
# Kept per series or context, not per period: a period range leaves them alone.
PER_SERIES_PARTS = ("sync status", "cache loads")
# Every part, in the order previews list them, with the table it lives in.
PART_TABLES: dict[str, str] = {
    "sync status": "metric_sync_status",
    "sync keys": "run_items",
    "pattern keys": "run_items",
    "base values": "metric_time_series",
    "dimension values": "metric_dimensional_time_series",
    "pattern results": "pattern_results",
    "cache loads": "cache_loads",
}


@dataclass(frozen=True, slots=True)
class Scope:
    """Which records a state command covers; None means every value.

    ``start`` and ``end`` bound per-period records (run keys, pattern results, stored values)
    by the first day of their period; sync status and cache loads are per series, so a scope
    with a range leaves them out.
    """

    tenant: str | None = None
    metric: str | None = None
    grain: Grain | None = None
    dimension: str | None = None
    start: date | None = None
    end: date | None = None

    @property
    def ranged(self) -> bool:
        return self.start is not None or self.end is not None

    @property
    def empty(self) -> bool:
        return all(
            v is None
            for v in (self.tenant, self.metric, self.grain, self.dimension, self.start, self.end)
        )

    def describe(self) -> str:
        """``tenant acme, metric orders, grain day, periods 2025-09-30..2025-09-30``."""
        parts = [
            f"{name} {value}"
            for name, value in (
                ("tenant", self.tenant),
                ("metric", self.metric),
                ("grain", self.grain.value if self.grain else None),
                ("dimension", self.dimension),
            )
            if value is not None
        ]
        if self.start or self.end:
            first = self.start.isoformat() if self.start else "…"
            last = self.end.isoformat() if self.end else "…"
            parts.append(f"periods {first}..{last}")
        return ", ".join(parts) or "everything"


def period_range(
    grain: Grain | None, first: str | None, last: str | None
) -> tuple[date | None, date | None]:
    """Parse ``--from``/``--to`` into the first and last day a scope's periods may start on.

    With a grain each value names a period of it (any date inside it works); without one a
    date, an ISO week or a month names the days it covers. Raises InputError for a bad value
    or a range that ends before it starts.
    """

    def span(text: str) -> tuple[date, date]:
        if grain is None:
            return parse_span(text)
        start = parse_period(grain, text)
        return start, start

    start = span(first)[0] if first else None
    end = span(last)[1] if last else None
    if start and end and end < start:
        raise InputError(f"invalid range: --to {last} is before --from {first}")
    return start, end


@dataclass(frozen=True, slots=True)
class SeriesState:
    """One series' last sync (the base series has ``dimension`` None)."""

    dimension: str | None
    status: str
    sync_type: str
    period: date
    window_start: date
    window_end: date
    rows_fetched: int
    rows_stored: int
    rows_skipped: int
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    failing_since: datetime | None
    error: str | None


@dataclass(frozen=True, slots=True)
class RunKeyCount:
    """How many run keys of one kind are in one status, and the periods they span."""

    kind: str  # sync | pattern
    status: str
    count: int
    first_period: date
    last_period: date


@dataclass(slots=True)
class PatternState:
    """One pattern's (and dimension's) stored results: by status, and periods missing one."""

    pattern: str
    dimension: str | None
    present: dict[str, int] = field(default_factory=dict)  # status -> results
    latest_period: date | None = None
    missing: list[date] = field(default_factory=list)  # synced periods without a result


@dataclass(frozen=True, slots=True)
class CacheState:
    """The last load of a context into one cache target."""

    target: str
    table: str
    status: str
    rows: int
    loaded_at: datetime
    window_start: date | None
    window_end: date | None
    error: str | None


@dataclass(slots=True)
class ContextState:
    """Everything the state database holds about one context at one grain."""

    context: str  # tenant::metric
    grain: Grain
    active: bool
    series: list[SeriesState] = field(default_factory=list)
    run_keys: list[RunKeyCount] = field(default_factory=list)
    patterns: list[PatternState] = field(default_factory=list)
    cache: list[CacheState] = field(default_factory=list)


@dataclass(slots=True)
class StateReport:
    """What ``state show`` prints."""

    scope: Scope
    contexts: list[ContextState] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ResetRequest:
    """What ``state reset`` was asked: the scope and the parts of it to clear."""

    scope: Scope
    what: tuple[str, ...]  # keys of RESET_WHATS, or "all"
    dry_run: bool = False

    @property
    def parts(self) -> tuple[str, ...]:
        """The parts to clear. A period range keeps to per-period records (``all`` too)."""
        names = RESET_WHATS if "all" in self.what else self.what
        wanted = {p for w in names for p in RESET_WHATS[w]}
        if self.scope.ranged:
            wanted -= set(PER_SERIES_PARTS)
        return tuple(p for p in PART_TABLES if p in wanted)

    def check(self) -> None:
        """Refuse per-series records with a period range; raise InputError."""
        per_series = [w for w in self.what if w in ("sync-status", "cache")]
        if self.scope.ranged and per_series:
            raise InputError(
                f"--what {per_series[0]} is kept per series, not per period: drop --from/--to "
                "(to redo periods, reset their run-keys)"
            )


@dataclass(slots=True)
class ResetResult:
    """What a reset would clear (``rows`` before it ran) and what it cleared."""

    request: ResetRequest
    rows: dict[str, int]  # part -> rows in scope
    held: int = 0  # run keys a running process holds: left alone
    applied: bool = False
    deleted: dict[str, int] = field(default_factory=dict)
    run_id: str | None = None

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def parse_what(values: list[str] | None) -> tuple[str, ...]:
    """Parse repeated (or comma-separated) ``--what`` values; raise InputError."""
    if not values:
        raise InputError(f"missing --what: expected one or more of {', '.join(WHAT_CHOICES)}")
    out: list[str] = []
    for value in values:
        for item in (v.strip().lower() for v in value.split(",")):
            if item not in WHAT_CHOICES:
                raise InputError(
                    f"invalid --what {item!r}: expected one of {', '.join(WHAT_CHOICES)}"
                )
            if item not in out:
                out.append(item)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class SeriesRequest:
    """What ``series show`` reads: one context's base series or one dimension's slices."""

    tenant: str
    metric: str
    grain: Grain
    dimension: str | None = None
    last: int | None = None
    start: date | None = None
    end: date | None = None


@dataclass(slots=True)
class SeriesValues:
    """Stored values: ``(date, slice, value)`` rows (slice None for the base series)."""

    request: SeriesRequest
    rows: list[tuple[date, str | None, float]] = field(default_factory=list)

    @property
    def slices(self) -> list[str | None]:
        return sorted({r[1] for r in self.rows}, key=lambda s: (s is not None, s or ""))
