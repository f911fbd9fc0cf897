"""Retention: what ``state prune`` keeps and removes, and what it reports (SPEC §5).

A prune removes the run history of periods older than ``keep_days`` days: run records, run
keys, superseded pattern results, finished backfill plans and the cache-load records of
contexts no longer active. It never removes stored series, the latest pattern result of a
context (per pattern and dimension), the latest succeeded run key of a context (catch-up and
``status`` read it), nor a run key a live process holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from fulcrum_sync.domain.errors import InputError
from fulcrum_sync.domain.periods import Grain, period_start

# What a prune removes, in the order it reports them, with the table each lives in.
PRUNE_PARTS: dict[str, str] = {
    "run keys": "run_items",
    "pattern results": "pattern_results",
    "backfill plan keys": "backfill_items",
    "backfill plans": "backfills",
    "runs": "runs",
    "cache loads": "cache_loads",
}
PRUNE_BATCH_ROWS = 5_000  # rows deleted per transaction: no lock is held for long
MAX_KEEP_DAYS = 36_500


@dataclass(frozen=True, slots=True)
class PruneRequest:
    """``state prune --keep-days N``: what to keep, and whether to change anything."""

    keep_days: int
    dry_run: bool = False
    batch_rows: int = PRUNE_BATCH_ROWS

    def check(self) -> None:
        """Raise InputError for a keep-days out of range."""
        if not 1 <= self.keep_days <= MAX_KEEP_DAYS:
            raise InputError(
                f"invalid --keep-days {self.keep_days}: expected a number of days from 1 to "
                f"{MAX_KEEP_DAYS}"
            )
        if self.batch_rows < 1:
            raise InputError(f"invalid batch size {self.batch_rows}: expected 1 or more")


@dataclass(frozen=True, slots=True)
class Cutoff:
    """Where history ends: records before it may go.

    ``day`` is the first day kept; ``periods`` holds, per grain, the first period kept (the
    period containing ``day``), so a period is pruned only when it lies wholly before ``day``.
    ``moment`` is ``day`` at midnight UTC, for timestamps (run starts, cache loads).
    """

    day: date
    moment: datetime
    periods: dict[Grain, date]

    @classmethod
    def of(cls, now: datetime, keep_days: int) -> Cutoff:
        day = now.date() - timedelta(days=keep_days)
        moment = datetime.combine(day, datetime.min.time(), now.tzinfo)
        return cls(day, moment, {g: period_start(g, day) for g in Grain})


@dataclass(slots=True)
class PruneResult:
    """What a prune would remove (``rows``, counted before) and what it removed."""

    request: PruneRequest
    cutoff: Cutoff
    rows: dict[str, int]
    held: int = 0  # old run keys a running process holds: left alone
    applied: bool = False
    deleted: dict[str, int] = field(default_factory=dict)
    run_id: str | None = None
    batches: int = 0

    @property
    def total(self) -> int:
        return sum(self.rows.values())
