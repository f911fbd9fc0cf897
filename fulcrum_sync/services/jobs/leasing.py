"""A run's leases on its run keys: renewed in the background while it works, and what it
says of a key whose lease ran out and that another run took over meanwhile."""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections.abc import Callable, Iterator

from sqlalchemy import Engine

from fulcrum_sync.store import leases

log = logging.getLogger(__name__)


@contextlib.contextmanager
def keep_leases(engine: Engine, owner: str, lease_seconds: int) -> Iterator[None]:
    """Renew ``owner``'s leases in a background thread every third of the lease."""
    renew = functools.partial(leases.renew_leases, engine, owner, lease_seconds)
    with repeating("lease-renewer", lease_seconds / 3, renew):
        yield


@contextlib.contextmanager
def repeating(name: str, seconds: float, call: Callable[[], object]) -> Iterator[None]:
    """Run ``call`` every ``seconds`` (at least 0.5) in a background thread during the block."""
    done = threading.Event()

    def loop() -> None:
        while not done.wait(max(seconds, 0.5)):
            with contextlib.suppress(Exception):  # a missed tick is retried at the next
                call()

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=5)


def warn_taken_over(run_key: str) -> None:
    """Say that ``run_key``, done by this run, was left to the run that took it over."""
    log.warning(
        "run key %s was taken over by another run (this run's lease on it ran out): "
        "its record is left to that run",
        run_key,
        extra={"run_key": run_key},
    )
