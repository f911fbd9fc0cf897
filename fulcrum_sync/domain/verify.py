"""What ``verify`` is asked, the differences it finds, and what it reports (SPEC §2).

``verify`` re-fetches the stored window of each selected context from the source and compares
three copies of a series: the source's, the state database's and the cache table's. It never
changes anything; each difference names the command that would fix it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from fulcrum_sync.domain.errors import InputError
from fulcrum_sync.domain.outcomes import RunOutcome, derive_outcome
from fulcrum_sync.domain.periods import Grain, Window

# Values closer than this are equal (floats went through JSON, strings and two databases).
REL_TOLERANCE = 1e-9
ABS_TOLERANCE = 1e-6
DEFAULT_SEED = 27  # ``--sample`` picks the same contexts every run unless ``--seed`` says


def same(a: float, b: float) -> bool:
    """True when two stored values are equal within the float tolerance."""
    return math.isclose(a, b, rel_tol=REL_TOLERANCE, abs_tol=ABS_TOLERANCE)


class DiffKind(StrEnum):
    """One kind of difference, and between which copies it is."""

    VALUE = "value differs"  # source and state both have the row, with different values
    MISSING_IN_STATE = "missing in state"  # the source has a row the state database lacks
    MISSING_IN_SOURCE = "missing in source"  # the state database has a row the source lacks
    GAP = "gap in source"  # a date inside the window the source returned no row for
    NOTHING_STORED = "nothing stored"
    CACHE_VALUE = "cache value differs"
    CACHE_MISSING = "missing in cache"  # a state row the cache table lacks
    CACHE_EXTRA = "extra in cache"  # a cache row the state database lacks
    CACHE_TABLE = "cache table missing"
    CACHE_STALE = "cache older than state"
    ERROR = "not compared"  # the source failed for this series


@dataclass(frozen=True, slots=True)
class VerifyRequest:
    """``verify --grain G [--tenant T] [--metric M] [--sample N] [--seed S]``."""

    grain: Grain
    tenant: str | None = None
    metric: str | None = None
    sample: int | None = None
    seed: int = DEFAULT_SEED

    def check(self) -> None:
        """Raise InputError for a sample size below 1."""
        if self.sample is not None and self.sample < 1:
            raise InputError(f"invalid --sample {self.sample}: expected 1 or more contexts")


@dataclass(frozen=True, slots=True)
class Difference:
    """One row (or table) that differs between the source, the state and the cache."""

    context: str  # tenant::metric
    kind: DiffKind
    series: str  # "base" or "dimension=slice"
    day: date | None = None
    source: float | None = None
    state: float | None = None
    cache: float | None = None
    detail: str = ""
    fix: str = ""  # the command that would fix it

    def line(self) -> str:
        """The difference in one line: context, series, date, kind, the values, the fix."""
        where = f"{self.context} {self.series}" + (f" {self.day.isoformat()}" if self.day else "")
        values = [
            f"{name} {_num(v)}"
            for name, v in (("source", self.source), ("state", self.state), ("cache", self.cache))
            if v is not None
        ]
        text = f"{where}: {self.kind.value}"
        if values:
            text += f" ({', '.join(values)})"
        if self.detail:
            text += f": {self.detail}"
        return f"{text}; fix: {self.fix}" if self.fix else text


def _num(value: float) -> str:
    return f"{value:.10g}"


@dataclass(slots=True)
class ContextCheck:
    """One context's comparison."""

    context: str
    window: Window | None = None
    source_rows: int = 0
    state_rows: int = 0
    cache_rows: int | None = None  # None: the cache was not compared (never loaded)
    differences: list[Difference] = field(default_factory=list)

    @property
    def status(self) -> str:
        if any(d.kind is DiffKind.ERROR for d in self.differences):
            return "error"
        return "differs" if self.differences else "equal"


@dataclass(slots=True)
class VerifyResult:
    """A whole ``verify`` run."""

    request: VerifyRequest
    contexts: list[ContextCheck] = field(default_factory=list)
    selected: int = 0  # active contexts in scope, before sampling
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def differences(self) -> list[Difference]:
        return [d for c in self.contexts for d in c.differences]

    @property
    def outcome(self) -> RunOutcome:
        """``succeeded`` when every copy matched, ``partial`` when anything differs."""
        return derive_outcome(failed=len(self.differences))

    def job_figures(self) -> dict[str, int]:
        """Contexts by status, for the pushed ``fulcrum_sync_contexts{outcome}``."""
        counts = {"equal": 0, "differs": 0, "error": 0}
        for c in self.contexts:
            counts[c.status] += 1
        return counts
