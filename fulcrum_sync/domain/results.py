"""What ``sync`` and ``patterns`` are asked to do and what they report (context and run)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING

from fulcrum_sync.domain.catch_up import CatchUpRest
from fulcrum_sync.domain.contexts import MetricContext
from fulcrum_sync.domain.outcomes import (
    CLAIMED_ELSEWHERE,
    FAILED_CONTEXTS,
    RunOutcome,
    derive_outcome,
)
from fulcrum_sync.domain.periods import Grain, SyncType, Window
from fulcrum_sync.domain.source_stats import SourceStats

if TYPE_CHECKING:  # only named in an annotation: a sync need not load the reports
    from fulcrum_sync.domain.reports import ContextCacheResult


def run_outcome(
    *,
    interrupted: bool,
    halted: str | bool | None,
    failed: bool,
    refused: str | None = None,
) -> RunOutcome:
    """How a run ended, for its record and exit code (SPEC §2): ``derive_outcome`` for runs
    that count no outage of their own."""
    return derive_outcome(
        refused=bool(refused), interrupted=interrupted, halted=bool(halted), failed=int(failed)
    )


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
    catch_up: bool = False  # every period missed since the last success, up to ``period``
    max_periods: int | None = None  # per context and run (default: GRAINS[grain].catch_up_periods)
    cache_load: bool = False  # load each context's cache table after its sync and patterns


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
    source_down: bool = False  # failed because the source is down (its breaker is open)
    refused: bool = False  # failed because the tenant's own Cube refused its credentials

    @property
    def rows_stored(self) -> int:
        return self.inserted + self.updated


@dataclass(slots=True)
class PatternRunResult:
    """One pattern run for a context and period (``dimension`` set for per-dimension ones)."""

    pattern: str
    dimension: str | None
    status: str  # a PatternStatus: succeeded | skipped | failed
    run_key: str
    error: str | None = None
    skip_reason: str | None = None  # a SkipReason: skipped because of its run key

    @property
    def claimed_elsewhere(self) -> bool:
        """Skipped because another run did it or holds it (not this run's work)."""
        return self.skip_reason in CLAIMED_ELSEWHERE


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
    periods: list[date] = field(default_factory=list)  # caught up: every period synced here
    rows_in_range: int | None = None  # caught up: rows stored in those periods
    cache: ContextCacheResult | None = None  # sync --cache-load: its table's load
    key_done: bool = False  # its run key was completed in the transaction of its writes

    @property
    def duration_seconds(self) -> float:
        if self.started_at is None or self.finished_at is None:
            return 0.0
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def rows_fetched(self) -> int:
        return sum(s.rows_fetched for s in self.series)

    @property
    def cache_failed(self) -> bool:
        return self.cache is not None and self.cache.status == "failed"

    @property
    def failed_any(self) -> bool:
        """True when any of its work failed: its sync, a series, a pattern or its cache load."""
        return (
            self.status in FAILED_CONTEXTS
            or any(p.status == "failed" for p in self.patterns)
            or self.cache_failed
        )

    @property
    def outage(self) -> bool:
        """True when it failed because a dependency (source, database) was down."""
        return self.status == "failed" and self.dependency_failure

    @property
    def refused(self) -> bool:
        """True when it failed because its tenant's own Cube refused the credentials."""
        return self.status == "failed" and self.base is not None and self.base.refused

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
    def source_down(self) -> bool:
        """True when a series failed because the source is down: the run should stop."""
        return any(s.source_down for s in self.series)

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
class ContextTally:
    """Contexts counted, not kept: a job writing JSON log lines logged each one already."""

    by_status: dict[str, int] = field(default_factory=dict)
    rows_stored: int = 0
    rows_skipped: int = 0
    caught_up: dict[str, list[date]] = field(default_factory=dict)  # catch-up runs only
    rows_fetched: int = 0  # of the contexts caught up
    rows_in_range: int = 0
    cache_loads: dict[str, int] = field(default_factory=dict)  # sync --cache-load only
    failed: int = 0  # contexts any of whose work failed (sync, series, pattern, cache load)
    outages: int = 0  # contexts that failed because a dependency was down

    def add(self, res: ContextResult) -> None:
        self.by_status[res.status] = self.by_status.get(res.status, 0) + 1
        self.failed += res.failed_any
        self.outages += res.outage
        self.rows_stored += res.rows_stored
        self.rows_skipped += res.rows_skipped
        if res.periods:
            self.caught_up[res.context.to_string()] = list(res.periods)
            self.rows_fetched += res.rows_fetched
            self.rows_in_range += res.rows_in_range or 0
        if res.cache is not None:
            self.cache_loads[res.cache.status] = self.cache_loads.get(res.cache.status, 0) + 1

    @classmethod
    def of(cls, contexts: list[ContextResult], counted: ContextTally) -> ContextTally:
        """``counted`` plus the kept ``contexts``: the whole run's aggregates."""
        whole = cls(
            dict(counted.by_status),
            counted.rows_stored,
            counted.rows_skipped,
            dict(counted.caught_up),
            counted.rows_fetched,
            counted.rows_in_range,
            dict(counted.cache_loads),
            counted.failed,
            counted.outages,
        )
        for c in contexts:
            whole.add(c)
        return whole

    @property
    def attempted(self) -> int:
        return sum(n for status, n in self.by_status.items() if status != "skipped")


@dataclass(slots=True)
class SyncRunResult:
    """A whole ``sync`` invocation.

    ``contexts`` holds every context's result, unless the run keeps only the failed ones
    (``keep_contexts=False`` in ``services.run.sync.run``); the others are then in ``tally``.
    """

    run_id: str | None
    request: SyncRequest
    contexts: list[ContextResult] = field(default_factory=list)
    interrupted: bool = False
    halted: str | None = None  # why the run stopped early (the source is down)
    refused: str | None = None  # the source refused our credentials: a setting is wrong
    started_at: datetime | None = None
    finished_at: datetime | None = None
    not_started: int = 0  # contexts left unclaimed when the run stopped early (released)
    source: SourceStats | None = None  # requests, retries, 429 pauses during this run
    beyond: list[CatchUpRest] = field(default_factory=list)  # left for a backfill (--catch-up)
    tally: ContextTally = field(default_factory=ContextTally)

    @property
    def context_count(self) -> int:
        """Every context this run reported on, kept or counted."""
        return len(self.contexts) + sum(self.tally.by_status.values())

    def status_counts(self) -> dict[str, int]:
        """How many contexts ended in each status (kept and counted)."""
        counts = dict(self.tally.by_status)
        for c in self.contexts:
            counts[c.status] = counts.get(c.status, 0) + 1
        return counts

    @property
    def rows_stored(self) -> int:
        return self.tally.rows_stored + sum(c.rows_stored for c in self.contexts)

    @property
    def rows_skipped(self) -> int:
        return self.tally.rows_skipped + sum(c.rows_skipped for c in self.contexts)

    @property
    def failed(self) -> list[ContextResult]:
        return [c for c in self.contexts if c.failed_any]

    @property
    def outcome(self) -> RunOutcome:
        """Decided from every context, kept or only counted: the same for every log format."""
        whole = ContextTally.of(self.contexts, self.tally)
        return derive_outcome(
            refused=bool(self.refused),
            interrupted=self.interrupted,
            halted=bool(self.halted),
            failed=whole.failed,
            attempted=whole.attempted,
            outage_failures=whole.outages,
        )


@dataclass(frozen=True, slots=True)
class PatternsRequest:
    """What ``patterns`` was asked to run."""

    grain: Grain
    period: date
    tenant: str | None = None
    metric: str | None = None
    pattern: str | None = None
    force: bool = False
    workers: int = 1


@dataclass(slots=True)
class PatternsRunResult:
    """A whole ``patterns`` invocation: one ContextResult (patterns only) per context."""

    run_id: str
    request: PatternsRequest
    contexts: list[ContextResult] = field(default_factory=list)
    interrupted: bool = False
    halted: str | None = None  # why the run stopped early (a dependency is down)

    @property
    def outcome(self) -> RunOutcome:
        failed = any(c.pattern_counts()["failed"] for c in self.contexts)
        return run_outcome(interrupted=self.interrupted, halted=self.halted, failed=failed)

    def totals(self) -> dict[str, int]:
        """How many pattern runs ended in each status."""
        totals: dict[str, int] = {}
        for c in self.contexts:
            for p in c.patterns:
                totals[p.status] = totals.get(p.status, 0) + 1
        return totals
