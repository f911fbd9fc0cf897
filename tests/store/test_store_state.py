"""Scoped counts and deletes (store/state.py): a dimension scope picks exactly its pattern keys."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine

from fulcrum_sync.domain import Grain, Scope
from fulcrum_sync.store import runs
from fulcrum_sync.store.state import StoreScope, count_parts, delete_parts

DAY = date(2025, 9, 30)
KEYS = {
    "pattern:day:2025-09-30:acme::new_revenue::dimension_analysis:region": "dimension_analysis",
    "pattern:day:2025-09-30:acme::new_revenue::dimension_analysis:channel": "dimension_analysis",
    "pattern:day:2025-09-30:acme::new_revenue::region": "region",  # a pattern named like it
    "pattern:day:2025-10-01:acme::new_revenue::dimension_analysis:region": "dimension_analysis",
    "pattern:day:2025-09-30:acme::new_revenue::dimension_analysis:reg_on": "dimension_analysis",
    "sync:day:2025-09-30:acme::new_revenue": "",
}


def test_dimension_and_range_pick_exactly_their_keys(engine: Engine) -> None:
    runs.ensure_items(
        engine,
        [
            runs.RunItem(
                key,
                "sync" if key.startswith("sync") else "pattern",
                "day",
                date.fromisoformat(key.split(":")[2]),
                "acme",
                "new_revenue",
                pattern,
            )
            for key, pattern in KEYS.items()
        ],
    )
    parts = ("sync keys", "pattern keys")
    region = StoreScope(Scope("acme", "new_revenue", Grain.DAY, "region", DAY, DAY), 1)
    assert count_parts(engine, region, parts) == ({"sync keys": 0, "pattern keys": 1}, 0)
    everything_on_day = StoreScope(Scope(start=DAY, end=DAY), None)
    assert count_parts(engine, everything_on_day, parts) == (
        {"sync keys": 1, "pattern keys": 4},
        0,
    )
    wildcard = StoreScope(
        Scope("acme", dimension="reg_on", start=DAY, end=DAY), 1
    )  # '_' is literal
    assert count_parts(engine, wildcard, parts)[0] == {"sync keys": 0, "pattern keys": 1}
    assert delete_parts(engine, region, parts) == ({"sync keys": 0, "pattern keys": 1}, 0)
    assert count_parts(engine, everything_on_day, parts)[0] == {"sync keys": 1, "pattern keys": 3}
