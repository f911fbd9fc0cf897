"""What a source did during a run: requests, retries, 429 pauses, its breaker, its page size."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime


@dataclass(frozen=True, slots=True)
class SourceStats:
    """Counters of one source (the demo reports zeros).

    ``queries`` counts the queries asked of Cube (a multi request of three queries: three;
    ``requests`` counts HTTP requests, retries and polls included). ``retries`` is spent
    from ``retry_budget`` (per run); ``throttled`` counts 429 answers and
    ``throttled_waits`` the requests held back by the pause a 429 started (every worker waits).
    ``down_since`` (the first failed attempt of the request that opened the breaker) and
    ``down_cause`` are set while the breaker is open.
    """

    requests: int = 0
    queries: int = 0
    retries: int = 0
    retry_budget: int | None = None
    throttled: int = 0
    throttled_waits: int = 0
    breaker_opened: int = 0
    page_size: int | None = None
    down_since: datetime | None = None
    down_cause: str | None = None

    def since(self, before: SourceStats) -> SourceStats:
        """Return the counts accumulated after ``before`` (settings and state as now)."""
        return replace(
            self,
            requests=self.requests - before.requests,
            queries=self.queries - before.queries,
            retries=self.retries - before.retries,
            throttled=self.throttled - before.throttled,
            throttled_waits=self.throttled_waits - before.throttled_waits,
            breaker_opened=self.breaker_opened - before.breaker_opened,
        )
