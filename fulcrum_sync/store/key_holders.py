"""Which of a set of run keys are not this process's to do: succeeded, or held by another.

The sync's fetch planner (services/run/fetch_plan.py) asks before fetching a group of contexts
together, so that contexts another process has claimed (several processes share a grain) or
finished are not fetched twice.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, select

from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import reconnecting, translate_errors


@reconnecting
def taken_among(
    engine: Engine, run_keys: list[str], owner: str, *, succeeded: bool = True
) -> set[str]:
    """The keys among ``run_keys`` that another owner holds (lease live), and those that
    succeeded when ``succeeded``."""
    if not run_keys:
        return set()
    c = t.run_items.c
    query = select(c.run_key, c.status, c.lease_owner, c.lease_expires_at).where(
        c.run_key.in_(run_keys)
    )
    now = datetime.now(UTC)
    taken: set[str] = set()
    with translate_errors(engine, "read run keys from"), engine.connect() as conn:
        for key, status, holder, expires in conn.execute(query):
            if status == "succeeded" and succeeded:
                taken.add(key)
            elif status == "running" and holder != owner and expires is not None:
                if expires.tzinfo is None:
                    expires = expires.replace(tzinfo=UTC)
                if expires > now:
                    taken.add(key)
    return taken
