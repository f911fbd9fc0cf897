"""One guard per source endpoint, shared by every worker: breaker, 429 throttle, concurrency cap,
retry budget, and the run's stop signal.

The breaker::

    closed ──(a request exhausts its retries: timeouts, connection errors, 5xx)──> open
    open ──(reset_seconds later, the next request)──> half-open: that request is the trial
    half-open ──(the trial gets an answer)──> closed
    half-open ──(the trial exhausts its retries)──> open, given up

While the breaker is open a request is refused at once with SourceDownError (the services
then stop the run; keys not started are released), and requests sleeping between retries
wake up to be refused. In a long run (``long_run``, a backfill) requests wait for the trial
instead, so a blip shorter than one retry cycle plus ``reset_seconds`` costs time, not the
job; a failed trial gives up and everyone is refused.

A 429 pauses every worker until its Retry-After (or an exponential backoff when absent);
at most ``max_concurrency`` requests are in flight; retries come out of one budget per run.

Every wait here (a retry's backoff, a 429 pause, a free place, the breaker's trial) wakes
when the run's ``stop`` event is set (SIGTERM/Ctrl-C) and raises StopRequested: nothing is
sent after the signal. The guard names no source: its ``name`` (the endpoint, e.g. ``Cube at
http://cube:4000``) and the names of the settings its messages point to are given to it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from fulcrum_sync.domain import SourceDownError, SourceStats, StopRequested
from fulcrum_sync.logs import log_event

log = logging.getLogger(__name__)

THROTTLE_BACKOFF = (1.0, 30.0)  # a 429 without Retry-After: first pause, longest pause
_POLL = 0.05  # how often waits re-check when an injected sleep stands in for the condition
_SLICE = 0.1  # with a stop event, condition waits wake this often to look at it


class SourceGuard:
    """Admit requests to one source endpoint; thread-safe, one per endpoint and process.

    :param name: the endpoint in messages (``Cube at http://cube:4000``).
    :param max_concurrency: requests in flight at once, across all workers.
    :param retry_budget: retries this run may spend (see :meth:`take_retry`).
    :param reset_seconds: how long the breaker stays open before a trial request.
    :param long_run: wait for the trial while open instead of failing (backfills).
    :param max_pause: the longest 429 pause honoured (a Retry-After beyond it is capped).
    :param clock: epoch seconds; ``sleep`` replaces the condition waits (tests pass a fake
        clock and sleep; None waits on the condition, so an opening breaker wakes sleepers).
    :param stop: the run's stop event: every wait wakes when it is set and raises
        StopRequested, and no request is admitted after it.
    :param budget_setting: the setting that raises the retry budget (named in its warning).
    :param reset_setting: the setting of ``reset_seconds`` (named in the outage warning).
    :param endpoint: the address without credentials, the ``endpoint`` field of its log lines.
    """

    def __init__(
        self,
        name: str = "source",
        *,
        max_concurrency: int = 8,
        retry_budget: int = 1000,
        reset_seconds: float = 60.0,
        long_run: bool = False,
        max_pause: float = 600.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] | None = None,
        stop: threading.Event | None = None,
        budget_setting: str = "the retry budget",
        reset_setting: str = "the breaker reset",
        endpoint: str | None = None,
    ) -> None:
        if max_concurrency < 1 or retry_budget < 0 or reset_seconds <= 0:
            raise ValueError("max_concurrency >= 1, retry_budget >= 0, reset_seconds > 0")
        self.name = name
        self.endpoint = endpoint
        self.max_concurrency = max_concurrency
        self.retry_budget = retry_budget
        self.reset_seconds = reset_seconds
        self.long_run = long_run
        self.max_pause = max_pause
        self.budget_setting = budget_setting
        self.reset_setting = reset_setting
        self.stop = stop
        self._clock = clock
        self._sleep = sleep
        self._cond = threading.Condition()
        self._in_flight = 0
        self._pause_until = 0.0
        self._throttle_backoff = THROTTLE_BACKOFF[0]
        self._state = "closed"  # closed | open | half-open
        self._since: float | None = None  # when the current outage began
        self._cause = ""
        self._retry_at = 0.0
        self._trial: int | None = None  # the thread whose request is the half-open trial
        self._given_up = False
        self._budget_spent_logged = False
        self._counts = {"requests": 0, "retries": 0, "throttled": 0, "waits": 0, "opened": 0}

    # ----------------------------------------------------------------- admission

    def check_stop(self, what: str = "") -> None:
        """Raise StopRequested when the run was asked to stop (nothing more is sent)."""
        if self.stop is not None and self.stop.is_set():
            prefix = f"{what}: " if what else ""
            raise StopRequested(f"{prefix}not sent to {self.name}: the run was asked to stop")

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the in-flight places while a request is sent.

        Waits while a 429 pause lasts or every place is taken; raises SourceDownError when
        the breaker refuses the request, StopRequested when the run is asked to stop.
        """
        me = threading.get_ident()
        held_back = False
        with self._cond:
            while True:
                self.check_stop()
                now = self._clock()
                wait = self._breaker_wait(me, now)
                if wait is None and self._pause_until > now:
                    wait, held_back = self._pause_until - now, True
                elif wait is None and self._in_flight >= self.max_concurrency:
                    wait = -1.0  # until a place frees
                if wait is None:
                    break
                self._wait(wait if wait >= 0 else None)
            self._in_flight += 1
            self._counts["requests"] += 1
            self._counts["waits"] += held_back
        try:
            yield
        finally:
            with self._cond:
                self._in_flight -= 1
                self._cond.notify_all()

    def _breaker_wait(self, me: int, now: float) -> float | None:
        """None: the breaker lets ``me`` through; else seconds to wait (-1: until notified)."""
        if self._state == "closed" or self._trial == me:
            return None
        if self._state == "open" and now >= self._retry_at:
            self._state, self._trial = "half-open", me
            log.warning("%s: trying one request again (breaker half-open)", self.name)
            return None
        if self.long_run and not self._given_up:
            return self._retry_at - now if self._state == "open" else -1.0
        raise SourceDownError(f"not sent: {self.down_text()}")

    def backoff(self, seconds: float) -> None:
        """Pause between retries or polls; return early when the breaker opens (the next try is
        refused); raise StopRequested when the run is asked to stop."""
        self.check_stop()
        if seconds <= 0:
            return
        if self._sleep is not None:
            self._sleep(seconds)
            self.check_stop()
            return
        me = threading.get_ident()
        end = self._clock() + seconds
        with self._cond:
            while self._state == "closed" or self._trial == me:
                remaining = end - self._clock()
                if remaining <= 0:
                    return
                self._wait(remaining)
                self.check_stop()

    def _wait(self, timeout: float | None) -> None:
        """Wait with the lock released until notified or ``timeout`` (None: until notified).

        With a stop event the wait wakes every ``_SLICE`` seconds to look at it (the caller
        re-checks); an injected sleep stands in for the whole wait.
        """
        if self._sleep is None:
            if self.stop is not None:
                timeout = _SLICE if timeout is None else min(timeout, _SLICE)
            self._cond.wait(timeout)
            return
        self._cond.release()
        try:
            self._sleep(timeout if timeout is not None else _POLL)
        finally:
            self._cond.acquire()

    # ----------------------------------------------------------------- outcomes

    def answered(self) -> None:
        """The source answered (anything but 5xx or 429): a trial closes the breaker."""
        me = threading.get_ident()
        with self._cond:
            self._throttle_backoff = THROTTLE_BACKOFF[0]
            if self._state != "closed" and self._trial == me:
                log.warning("%s answers again (down since %s)", self.name, self._since_text())
                self._state, self._trial, self._given_up, self._since = "closed", None, False, None
                self._cond.notify_all()

    def throttled(self, retry_after: float | None, what: str = "") -> float:
        """A 429: pause every worker until Retry-After (or a growing backoff); return the pause.

        A pause that starts (none was under way) logs one ``warning`` with its seconds and the
        endpoint; 429s answered during it extend it silently.
        """
        with self._cond:
            if retry_after is None:
                pause = self._throttle_backoff
                self._throttle_backoff = min(self._throttle_backoff * 2, THROTTLE_BACKOFF[1])
            else:
                pause = retry_after
            pause = min(pause, self.max_pause)
            now = self._clock()
            starts = self._pause_until <= now
            self._pause_until = max(self._pause_until, now + pause)
            self._counts["throttled"] += 1
        if starts:
            log_event(
                log,
                "source throttled",
                logging.WARNING,
                endpoint=self.endpoint,
                wait_seconds=round(pause, 3),
                error=f"{self.name} answered HTTP 429{f' to {what}' if what else ''}: every "
                f"request to it waits {pause:g}s",
            )
        return pause

    def take_retry(self) -> bool:
        """Spend one retry from the run's budget; False (logged once) when it is spent."""
        with self._cond:
            if self._counts["retries"] < self.retry_budget:
                self._counts["retries"] += 1
                return True
            if not self._budget_spent_logged:
                self._budget_spent_logged = True
                log.warning(
                    "%s: the run's retry budget is spent (%d retries, %s): the next failing "
                    "request counts as down",
                    self.name,
                    self.retry_budget,
                    self.budget_setting,
                )
            return False

    def exhausted(self, cause: str, since: float | None = None) -> bool:
        """A request gave up on transient failures: open the breaker.

        ``since`` is when its first attempt failed (the outage began then, at the latest).
        Return True when the caller should try again once the breaker lets it (a long run's
        first failure: everyone waits for the trial); False when the source counts as down.
        """
        me = threading.get_ident()
        with self._cond:
            now = self._clock()
            if self._trial == me:  # the half-open trial failed: give up
                self._trial, self._state, self._retry_at = None, "open", now + self.reset_seconds
                self._given_up = True
                self._cond.notify_all()
                self._log_down()
                return False
            if self._state != "closed":  # another worker opened it meanwhile
                return self.long_run and not self._given_up
            self._state, self._since, self._cause = "open", since or now, cause
            self._retry_at, self._given_up = now + self.reset_seconds, False
            self._counts["opened"] += 1
            self._cond.notify_all()
            if not self.long_run:
                self._log_down()
                return False
            log.warning(
                "%s unreachable since %s (%s): every request waits %gs, then one tries again (%s)",
                self.name,
                self._since_text(),
                cause,
                self.reset_seconds,
                self.reset_setting,
            )
            return True

    def end_call(self) -> None:
        """A call is over: if its thread still holds the trial (no verdict), free the trial."""
        me = threading.get_ident()
        with self._cond:
            if self._state == "half-open" and self._trial == me:
                self._state, self._trial, self._retry_at = "open", None, self._clock()
                self._cond.notify_all()

    # ----------------------------------------------------------------- reporting

    def down_text(self) -> str:
        """``Cube at http://cube:4000 is down since 2025-07-02 10:00:03Z (cause)``."""
        return f"{self.name} is down since {self._since_text()} ({self._cause})"

    def stats(self, page_size: int | None = None) -> SourceStats:
        """The counters so far (this process)."""
        with self._cond:
            since = self._since if self._state != "closed" else None
            return SourceStats(
                requests=self._counts["requests"],
                retries=self._counts["retries"],
                retry_budget=self.retry_budget,
                throttled=self._counts["throttled"],
                throttled_waits=self._counts["waits"],
                breaker_opened=self._counts["opened"],
                page_size=page_size,
                down_since=datetime.fromtimestamp(since, UTC) if since is not None else None,
                down_cause=self._cause if since is not None else None,
            )

    def _since_text(self) -> str:
        since = self._since if self._since is not None else self._clock()
        return datetime.fromtimestamp(since, UTC).strftime("%Y-%m-%d %H:%M:%SZ")

    def _log_down(self) -> None:
        """The one ``error`` line of an outage: the source is down, since when, and why."""
        log_event(
            log,
            "source down",
            logging.ERROR,
            endpoint=self.endpoint,
            since=self._since_text(),
            error=f"{self.down_text()}: no more requests to it in this run; contexts not "
            "started are released for the next run",
        )
