"""The ``backfill`` service: sync and analyse a range of periods, resumable and shardable.

``plan`` resolves a request (or its resume record) into periods × contexts; ``run`` does this
shard's part of it.
"""

from fulcrum_sync.domain import BackfillRequest
from fulcrum_sync.services.backfill.plan import (
    Planned,
    backfill_id,
    make_plan,
    parse_shard,
    resumed_request,
)
from fulcrum_sync.services.backfill.run import run

__all__ = [
    "BackfillRequest",
    "Planned",
    "backfill_id",
    "make_plan",
    "parse_shard",
    "resumed_request",
    "run",
]
