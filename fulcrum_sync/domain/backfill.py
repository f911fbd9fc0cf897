"""What ``backfill`` is asked to do, the plan it makes, and what it reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from fulcrum_sync.domain.contexts import MetricContext
from fulcrum_sync.domain.errors import InputError
from fulcrum_sync.domain.outcomes import RunOutcome
from fulcrum_sync.domain.periods import Grain, check_history, check_not_after
from fulcrum_sync.domain.results import run_outcome


@dataclass(frozen=True, slots=True)
class BackfillRequest:
    """What ``backfill`` was asked to do; :meth:`validate` refuses a bad range."""

    grain: Grain
    start: date
    end: date
    tenant: str | None = None
    metric: str | None = None
    patterns: bool = True
    workers: int = 1
    shard: tuple[int, int] | None = None
    resume: str | None = None
    force: bool = False
    dry_run: bool = False

    def validate(self, history_start: date, now: datetime | None = None) -> None:
        """Refuse an empty range, an end after the last complete period, a start before history.

        :param now: the current time for "last complete" (default: the clock).
        """
        if self.start > self.end:
            raise InputError(
                f"--start {self.start.isoformat()} is after --end {self.end.isoformat()}"
            )
        check_not_after(self.grain, self.end, now, what="--end")
        check_history(self.grain, self.start, history_start, what="--start")


@dataclass(slots=True)
class BackfillPlan:
    """Periods × contexts, and what they cost."""

    grain: Grain
    periods: list[date]
    contexts: list[MetricContext]
    sync_keys: int
    pattern_keys: int
    estimated_queries: int
    backfill_id: str | None = None
    shard: tuple[int, int] | None = None


@dataclass(slots=True)
class BackfillResult:
    """What a backfill (or this shard of it) did."""

    plan: BackfillPlan
    run_id: str
    done: int = 0  # keys executed and succeeded by this process
    failed: int = 0
    already_done: int = 0
    busy: int = 0
    rows_fetched: int = 0
    rows_in_range: int = 0
    source_queries: int = 0
    failures: list[str] = field(default_factory=list)
    interrupted: bool = False
    halted: str | None = None  # why the run stopped early (a dependency is down)
    refused: int = 0  # of the failed keys: their tenant's own Cube refused its credentials

    @property
    def outcome(self) -> RunOutcome:
        """``refused`` (exit 2) when every key it tried failed because a tenant's own Cube
        refused the credentials (the only endpoint it tried); else as any run."""
        every = self.refused > 0 and self.refused >= self.failed and self.done == 0
        return run_outcome(
            interrupted=self.interrupted,
            halted=self.halted,
            failed=bool(self.failed),
            refused=self.failures[0] if every and self.failures else None,
        )
