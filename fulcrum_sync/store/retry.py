"""Wait out a lost state database: the one retry helper of the store.

Every store function runs whole transactions, so when the server goes away (connection
refused, dropped, an admin shutdown, a restart) the failed transaction is simply run again
once the server answers: at most the work in flight is redone, and since each transaction
commits all or nothing, nothing is doubled. How long to wait is a :class:`Patience` set per
engine (``FULCRUM_SYNC_DATABASE_RETRY_SECONDS``). One ``warning`` is logged when the
database is first found gone, one ``info`` when it is back, however many threads waited;
past the bound a StoreError says so (exit 3).

The run's stop event (SIGTERM) ends every wait at once with StopRequested, as a wait for the
source does: the run ends ``interrupted`` (exit 143) and one ``warning`` says so. Its record
then gets :func:`after_stop`'s short grace: written if the database is back within it, else
the next run closes the run as abandoned.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    stop_when_event_set,
    wait_exponential,
)

from fulcrum_sync.domain import StopRequested, StoreError

log = logging.getLogger(__name__)
#: How long a stopped run's record waits for a lost database (within a pod's grace period).
STOP_GRACE_SECONDS = 5.0
P = ParamSpec("P")
R = TypeVar("R")

_DISCONNECT_MARKERS = (
    "terminating connection",
    "server closed the connection",
    "connection is closed",
    "connection is lost",
    "the connection is lost",
    "consuming input failed",
    "connection already closed",
    "ssl connection has been closed",
    "connection refused",
    "could not connect",
    "no connection to the server",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "the database system is not yet accepting connections",
)


def is_disconnect(engine: Engine, error: BaseException | None) -> bool:
    """True when ``error`` means the database connection was lost or refused (the server is
    away or restarting), not that a statement failed.

    The errors it was raised during (``__context__``) count too: a rollback on a connection
    the server dropped under a raw driver cursor (COPY) fails with an error of its own.
    """
    seen = 0
    while error is not None and seen < 5:
        if _lost(engine, error):
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False


def _lost(engine: Engine, error: BaseException) -> bool:
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    orig = getattr(error, "orig", None) or error
    operational = getattr(engine.dialect.loaded_dbapi, "OperationalError", None)
    if operational is None or not isinstance(orig, operational):
        return False
    sqlstate = str(getattr(orig, "sqlstate", "") or "")
    if sqlstate.startswith(("08", "57P0")):
        return True
    text = str(orig).lower()
    return any(marker in text for marker in _DISCONNECT_MARKERS)


@dataclass(slots=True)
class Patience:
    """How long to wait for a lost database, and the event that ends the wait early.

    :param seconds: the bound (0: one immediate retry, as for a connection the pool handed
        out stale).
    :param stop: the run's stop event (SIGTERM); a set event ends the wait at once.
    """

    seconds: float = 0.0
    stop: threading.Event = field(default_factory=threading.Event)
    gave_up: bool = False  # waited the bound in vain: later calls (the run's record) try once
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _gone_since: float | None = None
    _stop_said: bool = False

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` or until the stop event is set."""
        self.stop.wait(seconds)

    def gone(self, where: str, detail: str) -> None:
        """Note the database is away; the first thread to notice logs the one warning."""
        with self._lock:
            if self._gone_since is not None:
                return
            self._gone_since = time.monotonic()
        log.warning(
            "%s: the state database is unreachable (%s); waiting up to %g s for it "
            "(FULCRUM_SYNC_DATABASE_RETRY_SECONDS)",
            where,
            detail,
            self.seconds,
        )

    def stopped(self, where: str, detail: str) -> StopRequested:
        """The error that ends a wait the stop event woke; the first thread logs the line."""
        with self._lock:
            first, self._stop_said = not self._stop_said, True
        message = (
            f"{where}: stopped while waiting for the state database ({detail}): the run was "
            "asked to stop; the work in flight is left for the next run (exit 143)"
        )
        if first:
            log.warning(message)
        return StopRequested(message)

    def back(self, where: str) -> None:
        """Note the database answers again; logs the one ``info`` after an outage."""
        with self._lock:
            since, self._gone_since = self._gone_since, None
            self.gave_up = False
        if since is not None:
            log.info(
                "the state database %s is back after %.1f s; going on",
                where,
                time.monotonic() - since,
            )


_patience: weakref.WeakKeyDictionary[Engine, Patience] = weakref.WeakKeyDictionary()
_guard = threading.Lock()


def patience_of(engine: Engine) -> Patience:
    """The engine's patience (created with no waiting when none was set)."""
    with _guard:
        found = _patience.get(engine)
        if found is None:
            found = _patience[engine] = Patience()
        return found


def set_patience(
    engine: Engine, *, seconds: float | None = None, stop: threading.Event | None = None
) -> Patience:
    """Set how long store calls on ``engine`` wait for a lost database, and what stops them."""
    patience = patience_of(engine)
    if seconds is not None:
        patience.seconds = seconds
    if stop is not None:
        patience.stop = stop
    return patience


def patiently(engine: Engine, call: Callable[[], R]) -> R:
    """Return ``call()``, run again while it fails because the database is away.

    ``call`` must run whole transactions (a StoreError chained from the driver's error).
    Raises the last StoreError, reworded to say how long it waited, past the bound.
    """
    try:  # the usual case, without the retry machinery (it cost more than a small write)
        return call()
    except StoreError as exc:
        if not is_disconnect(engine, exc.__cause__):
            raise
        failed: list[StoreError] = [exc]

    def again() -> R:  # the retry loop's first attempt is the one that just failed
        if failed:
            raise failed.pop()
        return call()

    return _retried(engine, again)


def _retried(engine: Engine, call: Callable[[], R]) -> R:
    """:func:`patiently`'s loop: ``call()`` until it does not fail for a lost database."""
    patience = patience_of(engine)
    from fulcrum_sync.store.endpoint import database_address, database_endpoint

    where = database_endpoint(engine.url)
    lost = retry_if_exception(
        lambda e: isinstance(e, StoreError) and is_disconnect(engine, e.__cause__)
    )

    def waiting(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        if bound > 0:
            patience.gone(where, _detail(error))
        else:
            log.info("lost the state database connection (%s); reconnecting", error)

    bound = 0.0 if patience.gave_up else patience.seconds
    backoff = wait_exponential(multiplier=0.25, min=0.25, max=3)  # never past the bound
    retrying = Retrying(
        retry=lost,
        stop=(stop_after_delay(bound) & stop_after_attempt(2)) | stop_when_event_set(patience.stop),
        wait=lambda state: min(
            backoff(state), max(bound - (state.seconds_since_start or 0.0), 0.0)
        ),
        sleep=patience.sleep,
        before_sleep=waiting,
        reraise=True,
    )
    try:
        result = retrying(call)
    except StoreError as exc:
        if patience.seconds <= 0 or not is_disconnect(engine, exc.__cause__):
            raise
        # Stopped by SIGTERM (or a halt), unless another thread gave up first (the halt).
        if patience.stop.is_set() and not patience.gave_up:
            raise patience.stopped(where, _detail(exc)) from None
        patience.gave_up = True
        raise StoreError(
            f"{where}: the state database is unreachable: gave up after "
            f"{patience.seconds:g} s (FULCRUM_SYNC_DATABASE_RETRY_SECONDS): {_detail(exc)}",
            endpoint=database_address(engine.url),
        ) from exc.__cause__
    if retrying.statistics.get("attempt_number", 1) > 1:
        patience.back(where)
    return result


@contextlib.contextmanager
def after_stop(engine: Engine, seconds: float = STOP_GRACE_SECONDS) -> Iterator[None]:
    """Let the block's store calls wait up to ``seconds`` for a lost database although the
    run was stopped: a stopped run's record is worth a short wait, not the whole bound.

    Nothing changes when the run was not stopped, or when it gave up waiting already; the
    stop event and bound are restored after the block (call it when no worker runs).
    """
    patience = patience_of(engine)
    if not patience.stop.is_set() or patience.gave_up or patience.seconds <= 0:
        yield
        return
    saved = patience.stop, patience.seconds
    patience.stop, patience.seconds = threading.Event(), min(seconds, patience.seconds)
    try:
        yield
    finally:
        patience.stop, patience.seconds = saved


def reconnecting(func: Callable[Concatenate[Engine, P], R]) -> Callable[Concatenate[Engine, P], R]:
    """Run ``func(engine, ...)`` again when the database was lost mid-transaction.

    Every store function runs whole transactions, so a second run starts clean on a new
    connection (the pool pings only a connection that sat idle before handing it out: one
    lost between two quick uses fails its transaction here once, and SQLAlchemy replaces the
    pool's connections). How long it waits is the engine's :class:`Patience`.
    """

    def wrapper(engine: Engine, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return patiently(engine, lambda: func(engine, *args, **kwargs))

    functools.update_wrapper(wrapper, func)
    return wrapper


def _detail(error: BaseException | None) -> str:
    cause = getattr(error, "__cause__", None) or error
    orig = getattr(cause, "orig", None) or cause
    lines = str(orig).strip().splitlines()
    return lines[0] if lines else type(orig).__name__
