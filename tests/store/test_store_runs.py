"""Run keys: claims, leases, expiry, force, dead owners — on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import date, timedelta

from sqlalchemy import Engine, select, update

from fulcrum_sync.store import leases, runs
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.runs import Claim, RunItem

ITEM = RunItem(
    "sync:day:2025-07-01:acme::revenue", "sync", "day", date(2025, 7, 1), "acme", "revenue"
)


def item_row(engine: Engine) -> dict[str, object]:
    with engine.connect() as conn:
        return dict(
            conn.execute(select(t.run_items).where(t.run_items.c.run_key == ITEM.run_key))
            .mappings()
            .one()
        )


def claim(engine: Engine, owner: str, **kwargs: object) -> Claim:
    return runs.claim(
        engine, ITEM.run_key, owner=owner, run_id="r-" + owner, lease_seconds=60, **kwargs
    )  # type: ignore[arg-type]


def test_claim_busy_done_and_force(engine: Engine):
    runs.ensure_items(engine, [ITEM, ITEM])
    assert claim(engine, "host:1:a") is Claim.CLAIMED
    assert claim(engine, "host:2:b") is Claim.BUSY
    assert runs.complete(engine, ITEM.run_key, owner="host:1:a", succeeded=True, counts={"rows": 3})
    assert claim(engine, "host:2:b") is Claim.DONE
    row = item_row(engine)
    assert row["status"] == "succeeded" and row["attempts"] == 1 and row["counts"] == {"rows": 3}
    later = runs.now_utc() + timedelta(seconds=1)
    assert claim(engine, "host:2:b", force_before=later) is Claim.CLAIMED
    assert item_row(engine)["attempts"] == 2


def test_failed_key_is_claimed_again(engine: Engine):
    runs.ensure_items(engine, [ITEM])
    assert claim(engine, "host:1:a") is Claim.CLAIMED
    runs.complete(engine, ITEM.run_key, owner="host:1:a", succeeded=False, error="boom")
    assert item_row(engine)["error"] == "boom"
    assert claim(engine, "host:2:b") is Claim.CLAIMED


def test_expired_lease_is_reclaimed_and_loser_cannot_complete(engine: Engine):
    runs.ensure_items(engine, [ITEM])
    assert claim(engine, "other-host:1:a") is Claim.CLAIMED
    with engine.begin() as conn:
        conn.execute(
            update(t.run_items).values(lease_expires_at=runs.now_utc() - timedelta(seconds=1))
        )
    assert claim(engine, "host:2:b") is Claim.CLAIMED
    assert not runs.complete(engine, ITEM.run_key, owner="other-host:1:a", succeeded=True)
    assert runs.complete(engine, ITEM.run_key, owner="host:2:b", succeeded=True)


def test_renew_extends_lease(engine: Engine):
    runs.ensure_items(engine, [ITEM])
    claim(engine, "host:1:a")
    before = item_row(engine)["lease_expires_at"]
    time.sleep(0.01)
    assert leases.renew_leases(engine, "host:1:a", 600) == 1
    assert item_row(engine)["lease_expires_at"] > before  # type: ignore[operator]


def test_dead_owner_on_this_host_is_reclaimed(engine: Engine):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    dead = f"{runs.new_owner('x').split(':')[0]}:{proc.pid}:deadbeef"
    runs.ensure_items(engine, [ITEM])
    assert claim(engine, dead) is Claim.CLAIMED
    assert claim(engine, runs.new_owner("live")) is Claim.CLAIMED
    # A live owner on this host (this very process) is respected.
    assert claim(engine, runs.new_owner("third")) is Claim.BUSY


def test_release_all_on_shutdown(engine: Engine):
    runs.ensure_items(engine, [ITEM])
    claim(engine, "host:1:a")
    assert leases.release_all(engine, "host:1:a") == 1
    assert item_row(engine)["status"] == "released"
    assert claim(engine, "host:2:b") is Claim.CLAIMED


def test_claim_many_takes_what_is_free_in_one_go(engine: Engine):
    items = [
        RunItem(
            f"pattern:day:2025-07-01:acme::revenue::p{i}",
            "pattern",
            "day",
            date(2025, 7, 1),
            "acme",
            "revenue",
            f"p{i}",
        )
        for i in range(3)
    ]
    runs.ensure_items(engine, items)
    keys = [i.run_key for i in items]
    assert (
        runs.claim(engine, keys[0], owner="other:1:a", run_id="r1", lease_seconds=60)
        is Claim.CLAIMED
    )
    runs.complete(engine, keys[0], owner="other:1:a", succeeded=True)
    assert (
        runs.claim(engine, keys[1], owner="other:1:a", run_id="r1", lease_seconds=60)
        is Claim.CLAIMED
    )
    claims = runs.claim_many(engine, keys, owner="host:2:b", run_id="r2", lease_seconds=60)
    assert claims == {keys[0]: Claim.DONE, keys[1]: Claim.BUSY, keys[2]: Claim.CLAIMED}
