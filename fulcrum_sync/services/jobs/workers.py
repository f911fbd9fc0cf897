"""Run work items in N worker threads, in completion order (services/jobs/runner.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def map_workers(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """Yield ``fn(item)`` for each item, ``workers`` at a time, in completion order.

    One worker runs in the calling thread. At most ``2 * workers`` items are in flight, so
    memory stays flat however many items there are. An exception in ``fn`` propagates once
    the items already running finish; queued ones are cancelled.
    """
    if workers <= 1:
        for item in items:
            yield fn(item)
        return
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="worker")
    try:
        pending: set[Future[R]] = set()
        for item in items:
            pending.add(pool.submit(fn, item))
            if len(pending) >= workers * 2:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    yield f.result()
        for f in pending:
            yield f.result()
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)  # queued items never start
        raise
    pool.shutdown(wait=True)
