"""What ``discover``, ``cache-load`` and ``status`` report."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fulcrum_sync.domain.errors import InputError
from fulcrum_sync.domain.health import Headline
from fulcrum_sync.domain.outcomes import Health, RunOutcome, derive_outcome
from fulcrum_sync.domain.periods import Grain, Window

CHANGE_KINDS = ("added", "reactivated", "deactivated")


@dataclass(slots=True)
class MetricContextChange:
    """One metric context at a grain: its own change and its pattern contexts' changes."""

    context: str  # tenant::metric
    grain: str
    change: str  # added | reactivated | deactivated | unchanged
    patterns: dict[str, list[str]] = field(default_factory=dict)  # change -> pattern names


@dataclass(slots=True)
class ContextChanges:
    """What one discovery changed, as ``tenant::metric[::pattern]@grain`` labels."""

    added: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)
    reactivated: list[str] = field(default_factory=list)
    unchanged: int = 0

    def by_metric_context(self) -> list[MetricContextChange]:
        """Group the changes per metric context and grain (pattern contexts folded in)."""
        groups: dict[tuple[str, str], MetricContextChange] = {}
        for kind in CHANGE_KINDS:
            for label in getattr(self, kind):
                name, grain = label.rsplit("@", 1)
                tenant, metric, *pattern = name.split("::")
                key = (f"{tenant}::{metric}", grain)
                group = groups.setdefault(key, MetricContextChange(*key, change="unchanged"))
                if pattern:
                    group.patterns.setdefault(kind, []).append(pattern[0])
                else:
                    group.change = kind
        order = {g.value: i for i, g in enumerate(Grain)}
        return [groups[k] for k in sorted(groups, key=lambda k: (k[0], order.get(k[1], 9)))]


@dataclass(slots=True)
class DiscoverResult:
    """What discovery found: context changes, and what the source check reported."""

    grain: Grain | None
    demo_catalog_loaded: bool
    active_contexts: int
    active_pattern_contexts: int
    changes: ContextChanges
    tenants: list[str] = field(default_factory=list)  # taking part
    tenants_excluded: list[str] = field(default_factory=list)  # inactive or cache disabled
    broken_metrics: dict[str, list[str]] = field(default_factory=dict)
    checked_source: bool = False
    isolation_probed: list[str] = field(default_factory=list)  # metrics shared by tenants
    not_isolated: list[NotIsolated] = field(default_factory=list)
    isolation_unknown: list[IsolationUnknown] = field(default_factory=list)

    @property
    def outcome(self) -> RunOutcome:
        """``partial`` (exit 1) when a metric is broken or tenants are not (or cannot be
        shown to be) kept apart; else ``succeeded``."""
        failed = len(self.broken_metrics) + len(self.not_isolated) + len(self.isolation_unknown)
        return derive_outcome(failed=failed)


@dataclass(frozen=True, slots=True)
class NotIsolated:
    """Tenants that got identical, non-empty answers to the same metric: Cube does not scope."""

    metric: str
    tenants: list[str]
    grain: Grain
    window: Window
    rows: int

    def message(self) -> str:
        """One line naming the tenants and what to configure."""
        return (
            f"tenants {', '.join(self.tenants)} got identical answers for {self.metric} "
            f"({self.grain.value}, {self.window.to_string()}, {self.rows} rows): the source "
            "does not keep tenants apart: configure Cube's queryRewrite to filter on "
            "securityContext.tenant_id (the JWT claim FULCRUM_SYNC_CUBE_TENANT_CLAIM), or give "
            "each tenant `filters:` in the catalog (e.g. member: orders.tenant_id, operator: "
            "equals, values: [<its id>])"
        )


@dataclass(frozen=True, slots=True)
class IsolationUnknown:
    """Tenants whose probe answer was empty: whether the source keeps them apart is unknown."""

    metric: str
    tenants: list[str]
    grain: Grain
    window: Window

    def message(self) -> str:
        """One line naming the tenants and what to do."""
        return (
            f"cannot tell whether the source keeps tenants {', '.join(self.tenants)} apart for "
            f"{self.metric}: no rows in {self.grain.value} {self.window.to_string()} (an "
            "unscoped Cube whose data lies elsewhere answers empty too); check Cube's "
            "queryRewrite, or the tenants' `filters:` in the catalog, and the metric's data"
        )


@dataclass(slots=True)
class ContextCacheResult:
    """One context's load into its cache table."""

    context: str  # tenant::metric
    grain: Grain
    table: str  # fully qualified
    status: str  # succeeded | unchanged | skipped | failed
    rows: int = 0
    size_mb: float | None = None
    size_estimated: bool = False
    window: Window | None = None
    seconds: float = 0.0
    loaded_at: datetime | None = None
    skip_reason: str | None = None
    error: str | None = None
    dependency_failure: bool = False
    data_version: int | None = None  # the context's data version this load read


@dataclass(slots=True)
class CacheLoadResult:
    """A whole ``cache-load`` invocation."""

    grain: Grain
    target: str
    run_id: str | None = None
    contexts: list[ContextCacheResult] = field(default_factory=list)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    interrupted: bool = False  # SIGTERM/Ctrl-C arrived: the load in flight finished, no other
    not_started: int = 0  # contexts left unloaded because it was stopped

    @property
    def failed(self) -> list[ContextCacheResult]:
        return [c for c in self.contexts if c.status == "failed"]

    @property
    def outcome(self) -> RunOutcome:
        """``succeeded``, ``partial`` (some failed), ``failed`` (every load hit a dependency)
        or ``interrupted`` (a signal stopped it; the load in flight finished)."""
        if self.interrupted:
            return RunOutcome.INTERRUPTED
        attempted = [c for c in self.contexts if c.status not in ("skipped", "unchanged")]
        outages = [c for c in attempted if c.status == "failed" and c.dependency_failure]
        return derive_outcome(
            failed=len(self.failed), attempted=len(attempted), outage_failures=len(outages)
        )

    def summary(self) -> dict[str, object]:
        """Counts by status, rows loaded and total size (MB) of the loaded tables."""
        counts = {s: 0 for s in ("succeeded", "unchanged", "skipped", "failed")}
        for c in self.contexts:
            counts[c.status] = counts.get(c.status, 0) + 1
        loaded = [c for c in self.contexts if c.status == "succeeded"]
        duration = (
            (self.finished_at - self.started_at).total_seconds()
            if self.started_at and self.finished_at
            else 0.0
        )
        return {
            "outcome": self.outcome,
            **counts,
            "not_started": self.not_started,
            "rows": sum(c.rows for c in loaded),
            "size_mb": round(sum(c.size_mb or 0.0 for c in loaded), 6),
            "duration_seconds": round(duration, 3),
        }


@dataclass(slots=True)
class Freshness:
    """How current one grain is across its active contexts."""

    grain: Grain
    expected_period: date
    contexts: int
    up_to_date: int
    # context, latest (synced), expected, periods behind, command
    behind: list[dict[str, Any]] = field(default_factory=list)
    patterns_behind: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing ``status`` found wrong, the literal command that fixes it, and whether the
    next scheduled run (``sync --catch-up --cache-load``) will do that by itself."""

    kind: str  # behind | failing | patterns | cache
    grain: Grain
    context: str  # tenant::metric
    detail: str  # what is wrong, in one line
    command: str  # run it as it is
    by_schedule: bool
    schedule_note: str  # why the schedule does (or does not) fix it
    period: date | None = None


@dataclass(slots=True)
class StatusReport:
    """Everything ``status`` shows: ``health`` and ``headlines`` first, details after."""

    generated_at: datetime
    runs: list[dict[str, Any]]
    failing_series: list[dict[str, Any]]
    failing_patterns: list[dict[str, Any]]
    freshness: list[Freshness]
    backfills: list[dict[str, Any]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    health: Health = Health.HEALTHY
    headlines: list[Headline] = field(default_factory=list)
    abandoned_runs: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class CatalogSaveResult:
    """What a catalog load changed."""

    tenants: int
    metrics: int
    metrics_added: list[str]
    metrics_changed: list[str]
    metrics_removed: list[str]
    targets: int


@dataclass(frozen=True, slots=True)
class UpgradeResult:
    """Where the schema was, where it is now, and which database (password masked)."""

    database: str
    before: str | None
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after


@dataclass(slots=True)
class RunDetail:
    """One invocation (its ``runs`` row) and the run keys it last worked (``run_items`` rows)."""

    run: dict[str, Any]
    keys: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RevisionResult:
    """Where a database's schema is, against the newest revision this version knows."""

    database: str
    revision: str | None
    head: str

    @property
    def current(self) -> bool:
        return self.revision == self.head


RUN_OUTCOMES = tuple(o.value for o in RunOutcome)  # what ``runs --outcome`` accepts
_AGO = re.compile(r"(\d+)\s*([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True, slots=True)
class RunsQuery:
    """Which invocations ``runs`` lists: newest first, at most ``limit``, filtered."""

    limit: int = 20
    command: str | None = None
    outcome: str | None = None
    since: datetime | None = None  # started at or after (UTC)
    grain: Grain | None = None

    @classmethod
    def parse(
        cls,
        *,
        limit: int = 20,
        command: str | None = None,
        outcome: str | None = None,
        since: str | None = None,
        grain: str | None = None,
        now: datetime | None = None,
    ) -> RunsQuery:
        """Build a query from the command line's text; raise InputError naming a bad value."""
        if outcome is not None and outcome not in RUN_OUTCOMES:
            raise InputError(
                f"invalid --outcome {outcome!r}: expected one of {', '.join(RUN_OUTCOMES)}"
            )
        return cls(
            limit=limit,
            command=command,
            outcome=outcome,
            since=None if since is None else parse_since(since, now or datetime.now(UTC)),
            grain=None if grain is None else Grain.parse(grain),
        )


def parse_since(text: str, now: datetime) -> datetime:
    """``2025-09-30``, ``2025-09-30T06:00`` (UTC unless it says) or an age: ``30m``, ``12h``,
    ``7d``, ``2w`` before ``now``."""
    value = text.strip()
    ago = _AGO.fullmatch(value)
    if ago:
        return now - timedelta(**{_UNITS[ago.group(2)]: int(ago.group(1))})
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(
            f"invalid --since {text!r}: expected a date (2025-09-30), a UTC time "
            "(2025-09-30T06:00) or an age (30m, 12h, 7d, 2w)"
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
