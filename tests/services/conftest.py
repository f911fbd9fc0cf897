"""Fixtures of the cache-load tests that play two processes on one PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from test_cache_load_service import seed

from fulcrum_sync.store.engine import open_engine
from fulcrum_sync.store.versions import bump


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    """This process's engine: the seeded state, with the writes' data versions recorded as
    a sync records them."""
    engine = open_engine(pg_url, workers=4)
    seed(engine)
    with engine.begin() as conn:
        for metric in ("new_revenue", "orders"):
            bump(conn, 1, metric, "day")
    yield engine
    engine.dispose()


@pytest.fixture
def other(pg_url: str) -> Iterator[Engine]:
    """Another process's engine on the same database."""
    engine = open_engine(pg_url)
    yield engine
    engine.dispose()
