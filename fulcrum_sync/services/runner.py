"""Run keyed work: claim each key, work it in N workers, renew leases, record the outcome.

``sync``, ``patterns`` and ``backfill`` all go through :func:`run_keyed`, so every piece of
work is done once even when processes overlap, and a killed process's keys are reclaimed
once their lease expires.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Engine

from fulcrum_sync.store import runs
from fulcrum_sync.store.runs import Claim, RunItem

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a piece of work ended, for its ``run_items`` row."""

    succeeded: bool
    counts: dict[str, Any] | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class KeyedWork(Generic[T]):
    """A run key and the payload the worker function receives."""

    item: RunItem
    payload: T


@dataclass(frozen=True, slots=True)
class RunContext:
    """Who is working: the run, the lease owner, and the shared stop signal."""

    engine: Engine
    run_id: str
    owner: str
    lease_seconds: int
    stop: threading.Event
    force_before: datetime | None = None  # --force: redo keys that succeeded before this


@contextlib.contextmanager
def keep_leases(engine: Engine, owner: str, lease_seconds: int) -> Iterator[None]:
    """Renew ``owner``'s leases in a background thread every third of the lease."""
    done = threading.Event()

    def renew() -> None:
        while not done.wait(max(lease_seconds / 3, 0.5)):
            with contextlib.suppress(Exception):  # a missed renewal is retried next tick
                runs.renew_leases(engine, owner, lease_seconds)

    thread = threading.Thread(target=renew, name="lease-renewer", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=5)


def run_keyed(
    rc: RunContext,
    work: Sequence[KeyedWork[T]],
    do: Callable[[T], R],
    summarize: Callable[[R], Outcome],
    skipped: Callable[[KeyedWork[T], Claim], R],
    *,
    workers: int = 1,
    on_result: Callable[[R], None] | None = None,
    renew: bool = True,
    batch_claim: bool = False,
) -> list[R]:
    """Claim and do every item; return results in completion order.

    ``workers == 1`` runs everything in the calling thread (a breakpoint stops there).
    Items not yet started when ``rc.stop`` is set are left unclaimed. ``renew=False`` when
    an outer call already renews this owner's leases (they are renewed per owner).
    ``batch_claim`` claims every key in one transaction first (small batches done by one
    worker, such as a context's patterns); unstarted keys are released if ``rc.stop`` is set.
    """
    if not work:
        return []
    runs.ensure_items(rc.engine, [w.item for w in work])
    results: list[R] = []
    claimed_up_front: dict[str, Claim] = {}
    if batch_claim:
        claimed_up_front = runs.claim_many(
            rc.engine,
            [w.item.run_key for w in work],
            owner=rc.owner,
            run_id=rc.run_id,
            lease_seconds=rc.lease_seconds,
            force_before=rc.force_before,
        )

    def one(w: KeyedWork[T]) -> R | None:
        if rc.stop.is_set():
            return None
        claim = claimed_up_front.get(w.item.run_key) or runs.claim(
            rc.engine,
            w.item.run_key,
            owner=rc.owner,
            run_id=rc.run_id,
            lease_seconds=rc.lease_seconds,
            force_before=rc.force_before,
        )
        if claim is not Claim.CLAIMED:
            return skipped(w, claim)
        try:
            result = do(w.payload)
            outcome = summarize(result)
        except BaseException as exc:
            runs.complete(
                rc.engine,
                w.item.run_key,
                owner=rc.owner,
                succeeded=False,
                error=f"{type(exc).__name__}: {exc}",
            )
            raise
        runs.complete(
            rc.engine,
            w.item.run_key,
            owner=rc.owner,
            succeeded=outcome.succeeded,
            counts=outcome.counts,
            error=outcome.error,
        )
        return result

    def collect(result: R | None) -> None:
        if result is not None:
            results.append(result)
            if on_result is not None:
                on_result(result)

    leases = keep_leases(rc.engine, rc.owner, rc.lease_seconds) if renew else nullcontext()
    with leases:
        for result in map_workers(one, work, workers):
            collect(result)
    return results


def map_workers(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """Yield ``fn(item)`` for each item, ``workers`` at a time, in completion order.

    One worker runs in the calling thread. At most ``2 * workers`` items are in flight, so
    memory stays flat however many items there are. An exception in ``fn`` propagates.
    """
    if workers <= 1:
        for item in items:
            yield fn(item)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="worker") as pool:
        pending: set[Future[R]] = set()
        for item in items:
            pending.add(pool.submit(fn, item))
            if len(pending) >= workers * 2:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    yield f.result()
        for f in pending:
            yield f.result()
