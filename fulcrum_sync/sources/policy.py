"""How a source retries: one frozen value, built from the settings and passed into the client.

The client reads its attempts, backoff and deadline from it; the source's guard spends the
run's retry ``budget`` (shared by every request to one endpoint).
"""

from __future__ import annotations

from dataclasses import dataclass

import tenacity


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries of one request, and the run's budget of them.

    :param attempts: tries of one request (the first included) on timeouts, connection
        errors and 5xx; a 429 is waited out, not counted.
    :param backoff_base: the first pause between tries (exponential: base, 2 base, 4 base...).
    :param backoff_max: the longest pause between tries.
    :param jitter: up to this many seconds are added at random to each pause.
    :param deadline: how long one request may keep waiting on the source's "not yet"
        answers (Continue wait, 429) before it fails; also the longest 429 pause honoured.
    :param budget: retries one run may spend across all its requests to one endpoint; once
        spent, the next failing request counts as the endpoint down.
    """

    attempts: int = 6
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    jitter: float = 0.5
    deadline: float = 600.0
    budget: int = 1000

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.budget < 0:
            raise ValueError(f"attempts must be >= 1 and budget >= 0, got {self}")
        if min(self.backoff_base, self.backoff_max, self.jitter) < 0 or self.deadline <= 0:
            raise ValueError(f"backoff and jitter must be >= 0, deadline > 0, got {self}")

    @property
    def retries(self) -> int:
        """Retries after the first attempt."""
        return self.attempts - 1

    def backoff(self) -> tenacity.wait.wait_base:
        """The pause before each retry: exponential from ``backoff_base`` to ``backoff_max``,
        plus up to ``jitter`` seconds."""
        exponential = tenacity.wait_exponential(multiplier=self.backoff_base, max=self.backoff_max)
        return exponential + tenacity.wait_random(0, self.jitter)
