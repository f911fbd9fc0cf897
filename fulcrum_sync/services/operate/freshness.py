"""How many active contexts of a grain lack the last complete period: the figure a sync job
pushes as ``fulcrum_sync_contexts_behind`` (``status`` shows the same contexts by name)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from fulcrum_sync.domain import Grain, last_complete_period
from fulcrum_sync.store import progress, reports


def contexts_behind(engine: Engine, grain: Grain, now: datetime) -> int:
    """Active contexts of ``grain`` whose latest succeeded sync is older than the last complete
    period at ``now`` (never synced counts as behind). Raises StoreError."""
    expected = last_complete_period(grain, now)
    synced = progress.latest_synced(engine, grain.value)
    behind = 0
    for c in reports.active_contexts(engine):
        if c["grain"] != grain.value:
            continue
        latest = synced.get((c["tenant"], c["metric_id"]))
        behind += latest is None or latest < expected
    return behind
