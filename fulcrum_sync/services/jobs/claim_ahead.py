"""Claim run keys a few at a time, just ahead of their work, in one transaction per batch.

A context whose sync takes a few milliseconds paid a transaction of its own for its claim
(13% of an incremental sync's CPU on SQLite). :class:`ClaimAhead` claims the keys of the
next contexts together, as many as cover about :data:`AHEAD_SECONDS` of work at the pace of
the run so far (1 at first; a context of patterns taking 0.1 s claims alone), so:

- each key is still claimed once (``runs.claim_many`` takes only claimable keys);
- several processes still share the work: a process holds at most ~0.1 s of work ahead;
- a stopped run (SIGTERM, a halt) releases the keys it claimed and did not start, with
  the rest of its keys (``leases.release_all`` when its record closes); a killed process's
  keys are taken over once their lease expires (at once on the same host), as before.

A claimed key's ``started_at`` is when its batch was claimed (at most ~0.1 s early).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from sqlalchemy import Engine

from fulcrum_sync.store import runs
from fulcrum_sync.store.runs import Claim


class Claimant(Protocol):
    """Who claims: the run (runner.RunContext)."""

    @property
    def engine(self) -> Engine: ...

    @property
    def run_id(self) -> str: ...

    @property
    def owner(self) -> str: ...

    @property
    def lease_seconds(self) -> int: ...

    @property
    def force_before(self) -> datetime | None: ...


AHEAD_SECONDS = 0.1  # the work one batch of claims covers, at the run's pace
MAX_BATCH = 64


class Pace:
    """The pace of a run's work so far, to size batches by the time they cover."""

    def __init__(self) -> None:
        self.since = time.monotonic()
        self.count = 0  # items started (or done) since then

    def size(self, seconds: float, most: int) -> int:
        """How many items cover about ``seconds`` of work at the pace so far (1 at first)."""
        if not self.count:
            return 1
        per_item = (time.monotonic() - self.since) / self.count
        return max(1, min(most, int(seconds / max(per_item, 1e-6))))


class ClaimAhead:
    """Claims of ``keys`` (in the order their work starts), batch by batch; thread-safe."""

    def __init__(self, rc: Claimant, keys: Sequence[str]) -> None:
        self.rc = rc
        self.keys = list(keys)
        self.at = {k: i for i, k in enumerate(self.keys)}
        self.asked: set[str] = set()  # keys a batch claimed (or tried to)
        self.claims: dict[str, Claim] = {}  # their answers, until their work takes them
        self.pace = Pace()
        self.lock = threading.Lock()

    def take(self, key: str) -> Claim:
        """The claim of ``key``: claimed with the next batch when no batch had it yet."""
        with self.lock:
            if key not in self.asked:
                first = self.at[key]
                size = self.pace.size(AHEAD_SECONDS, MAX_BATCH)
                batch = [k for k in self.keys[first : first + size] if k not in self.asked]
                self.asked.update(batch)
                self.claims.update(self._claim(batch))
            self.pace.count += 1
            return self.claims.pop(key)

    def _claim(self, batch: list[str]) -> dict[str, Claim]:
        return claim_keys(self.rc, batch)


def claim_keys(
    rc: Claimant, keys: list[str], items: list[runs.RunItem] | None = None
) -> dict[str, Claim]:
    """Claim ``keys`` for the run ``rc`` (one key: the single-key statement; more: one
    transaction); ``items`` makes the keys' rows in that transaction too."""
    owner, run_id, lease, force = rc.owner, rc.run_id, rc.lease_seconds, rc.force_before
    if len(keys) == 1 and items is None:
        claim = runs.claim(
            rc.engine, keys[0], owner=owner, run_id=run_id, lease_seconds=lease, force_before=force
        )
        return {keys[0]: claim}
    return runs.claim_many(
        rc.engine,
        keys,
        owner=owner,
        run_id=run_id,
        lease_seconds=lease,
        force_before=force,
        items=items,
    )


__all__ = ["AHEAD_SECONDS", "MAX_BATCH", "ClaimAhead", "Claimant", "Pace", "claim_keys"]
