"""Run keyed work: claim each key, work it in N workers, renew leases, record the outcome.

``sync``, ``patterns`` and ``backfill`` all go through :func:`run_keyed`, so every piece of
work is done once even when processes overlap, and a killed process's keys are reclaimed
once their lease expires.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Engine

from fulcrum_sync.domain import DependencyError, StopRequested
from fulcrum_sync.jsonable import jsonable
from fulcrum_sync.logs import bound_fields
from fulcrum_sync.services.jobs.claim_ahead import ClaimAhead, claim_keys
from fulcrum_sync.services.jobs.leasing import keep_leases, repeating, warn_taken_over
from fulcrum_sync.services.jobs.workers import map_workers
from fulcrum_sync.store import leases, progress, run_records, runs
from fulcrum_sync.store.retry import STOP_GRACE_SECONDS, after_stop, set_patience
from fulcrum_sync.store.runs import Claim, RunItem

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")


class Deferred(enum.Enum):
    """What ``do`` returns (:data:`DEFERRED`) for work whose result comes later."""

    DEFERRED = "deferred"


DEFERRED = Deferred.DEFERRED


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a piece of work ended, for its ``run_items`` row."""

    succeeded: bool
    counts: dict[str, Any] | None = None
    error: str | None = None
    recorded: bool = False  # the work completed its key in its own transaction already


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
    halted: list[str] = field(default_factory=list)  # why work stopped early (source down)

    def halt(self, reason: str) -> None:
        """Start no new work because a dependency is down; the rest is released, not failed.

        Unlike a SIGTERM (:attr:`interrupted`), the run then ends ``failed``.
        """
        if not self.halted:
            self.halted.append(reason)
        self.stop.set()

    def fields(self, item: RunItem | None = None, **more: Any) -> dict[str, Any]:
        """The log fields of work on ``item`` in this run (see ``logs.bound_fields``)."""
        if item is None:
            return {"run_id": self.run_id, **more}
        return {
            "run_id": self.run_id,
            "run_key": item.run_key,
            "tenant": item.tenant,
            "metric": item.metric_id,
            "grain": item.grain,
            **more,
        }

    @property
    def interrupted(self) -> bool:
        """True when SIGTERM/SIGINT (not a halt) stopped the run early."""
        return self.stop.is_set() and not self.halted

    @classmethod
    def start(
        cls,
        engine: Engine,
        command: str,
        arguments: Any,
        *,
        lease_seconds: int,
        stop: threading.Event | None = None,
        force: bool = False,
    ) -> RunContext:
        """Record the invocation (its ``runs`` row) and return who does its work.

        :param arguments: the request (a dataclass) or a dict; stored as JSON.
        :param force: redo keys that succeeded before now.
        Raises StoreError when the database is unreachable.
        """
        started = datetime.now(UTC)
        stop = stop or threading.Event()
        set_patience(engine, stop=stop)  # a wait for a lost database ends on SIGTERM
        close_abandoned(engine, lease_seconds)
        run_id = run_records.start_run(engine, command, jsonable(arguments))
        return cls(
            engine,
            run_id,
            runs.new_owner(run_id),
            lease_seconds,
            stop,
            force_before=started if force else None,
        )

    @contextlib.contextmanager
    def recording(self, summarize: Callable[[], tuple[str, dict[str, Any]]]) -> Iterator[None]:
        """Record the run's outcome however the block ends; release the keys still held.

        ``summarize`` returns (outcome, summary) of a block that ended normally (or was
        stopped by the stop signal). An exception records ``failed`` (``interrupted`` for
        Ctrl-C or an exit) with its message, and propagates.
        """
        error: BaseException | None = None
        beat = functools.partial(run_records.beat, self.engine, self.run_id)
        try:
            with repeating("run-heartbeat", self.lease_seconds / 3, beat):
                yield
        except BaseException as exc:
            error = exc
            raise
        finally:
            try:
                outcome, summary = summarize()
            except Exception:
                if error is None:
                    raise
                outcome, summary = "failed", {}
            if error is not None:
                signalled = isinstance(error, KeyboardInterrupt | SystemExit)
                woke = isinstance(error, StopRequested) and not self.halted  # a SIGTERM wait
                outcome = "interrupted" if signalled or woke else "failed"
                summary = {**summary, "error": f"{type(error).__name__}: {error}"}
            try:
                with after_stop(self.engine):  # a stopped run's record: a short grace
                    leases.release_all(self.engine, self.owner)
                    run_records.finish_run(self.engine, self.run_id, outcome, summary)
            except (DependencyError, StopRequested):
                if error is None and not self.stop.is_set():
                    raise  # otherwise the original error (or the stop) is the one to report
                if error is None:  # stopped (exit 143) with the database still away
                    log.warning(
                        "run %s not recorded %s: the state database did not come back within "
                        "%g s of the stop; the next run closes it as abandoned",
                        self.run_id,
                        outcome,
                        STOP_GRACE_SECONDS,
                    )


def close_abandoned(engine: Engine, lease_seconds: int) -> None:
    """Close the runs whose process is gone as ``abandoned`` (their keys are released)."""
    for gone in run_records.close_abandoned(engine, lease_seconds=lease_seconds):
        log.warning(
            "closed run %s (%s, started %s on %s, pid %s) as abandoned: its process is gone",
            gone.run_id,
            gone.command,
            gone.started_at.isoformat(timespec="seconds"),
            gone.host,
            gone.pid,
            extra={"abandoned_run_id": gone.run_id},
        )


def run_keyed(
    rc: RunContext,
    work: Sequence[KeyedWork[T]],
    do: Callable[[T], R | Deferred],
    summarize: Callable[[R], Outcome],
    skipped: Callable[[KeyedWork[T], Claim], R],
    *,
    workers: int = 1,
    on_result: Callable[[R], None] | None = None,
    made: bool = False,
    claim: Callable[[KeyedWork[T]], Claim] | None = None,
    deferred: Callable[[bool], list[tuple[str, R]]] | None = None,
) -> list[R]:
    """Claim and do every item; return results in completion order (none when ``on_result``
    takes each as it comes: a run of any size then keeps no result per item).

    ``workers == 1`` runs everything in the calling thread (a breakpoint stops there). Items
    not started when ``rc.stop`` is set are not started (their keys are released with the
    run's). Keys are claimed just ahead of their work, ~0.1 s of work per transaction
    (claim_ahead.py), except keys that had succeeded when the run started (one query):
    skipped as done without a claim, unless the run forces. Leases are renewed meanwhile.
    ``made``: the caller made the keys' rows. ``claim``: how an item's key is claimed, when
    not alone (a sync claims a done context's pattern keys with it). ``do`` may return
    :data:`DEFERRED`: its result comes later, from ``deferred`` (see :func:`_do_all`).
    """
    if not work:
        return []
    if not made:  # the caller made (and adopted) the keys already: keys.ensure_expected
        runs.ensure_items(rc.engine, [w.item for w in work], rc.run_id)
    results: list[R] = []
    keys = [w.item.run_key for w in work]
    done_before = progress.succeeded_among(rc.engine, keys) if rc.force_before is None else set()
    ahead = ClaimAhead(rc, [k for k in keys if k not in done_before])
    by_key = {w.item.run_key: w for w in work} if deferred is not None else {}

    def one(w: KeyedWork[T]) -> R | None:
        if rc.stop.is_set():
            return None
        with bound_fields(**rc.fields(w.item)):
            return work_one(w)

    def work_one(w: KeyedWork[T]) -> R | None:
        if w.item.run_key in done_before:
            return skipped(w, Claim.DONE)
        got = ahead.take(w.item.run_key) if claim is None else claim(w)
        if got is not Claim.CLAIMED:
            return skipped(w, got)
        try:
            result = do(w.payload)
            if isinstance(result, Deferred):
                return None  # reported by ``deferred``
            outcome = summarize(result)
        except StopRequested:
            return None  # SIGTERM during a wait: abandoned; the key is released at the end
        except BaseException as exc:
            rc.halt(f"{type(exc).__name__}: {exc}")  # start nothing new; the error ends the run
            with contextlib.suppress(DependencyError):  # the error to report is ``exc``
                _settle(rc, w.item.run_key, Outcome(False, error=f"{type(exc).__name__}: {exc}"))
            raise
        if not outcome.recorded:
            _settle(rc, w.item.run_key, outcome)
        return result

    def later(final: bool) -> None:  # deferred results, once ready, as ``do``'s
        for key, result in deferred(final) if deferred is not None else ():
            with bound_fields(**rc.fields(by_key[key].item)):
                outcome = summarize(result)
                if not outcome.recorded:
                    _settle(rc, key, outcome)
            keep(result)

    keep = results.append if on_result is None else on_result
    try:
        with keep_leases(rc.engine, rc.owner, rc.lease_seconds):
            _do_all(work, one, workers, keep, later)
    finally:
        if rc.stop.is_set():  # not started: the next run covering them does them
            with contextlib.suppress(DependencyError, StopRequested):  # the record says why
                leases.release_pending(rc.engine, keys)
    return results


def _do_all(
    work: Sequence[KeyedWork[T]],
    one: Callable[[KeyedWork[T]], R | None],
    workers: int,
    keep: Callable[[R], None],
    later: Callable[[bool], None],
) -> None:
    """``one`` of each item (``keep`` its result), ``later(False)`` after each, then
    ``later(True)``: also when an item raised (that error is the one reported).

    An item whose ``do`` returned :data:`DEFERRED` keeps its key held; its result comes from
    ``deferred(final)`` (``run_keyed``'s) as (run key, result) pairs, each then handled as if
    ``do`` had returned it (a sync stores contexts in batches: services/run/write_batch.py):
    asked after each item (final=False: what is ready), then with final=True (finish what
    is pending) when the loop ends, also on a stop or an error: before any key is released.
    """
    try:
        for result in map_workers(one, work, workers):
            if result is not None:
                keep(result)
            later(False)
    except BaseException:
        with contextlib.suppress(DependencyError, StopRequested):
            later(True)
        raise
    later(True)


def run_batch(
    rc: RunContext,
    work: Sequence[KeyedWork[T]],
    do_all: Callable[[list[T]], list[R]],
    summarize: Callable[[R], Outcome],
    skipped: Callable[[KeyedWork[T], Claim], R],
    *,
    claimed: Mapping[str, Claim] | None = None,
) -> list[R]:
    """Claim every key in one transaction, do the claimed ones in one call, record each.

    ``do_all`` gets the payloads of the claimed keys, in order, and returns one result per
    payload (a backfill syncs a context's claimed periods in as few fetches as it can). Keys
    not claimed come back through ``skipped``. If ``do_all`` raises, every claimed key is
    recorded failed. Leases are renewed by the caller. ``claimed``: keys whose claim was
    made already (in another transaction of the caller's); only the others are claimed.
    """
    if not work:
        return []
    claims = dict(claimed or {})
    rest = [w for w in work if w.item.run_key not in claims]
    if rest:
        claims.update(_claim_all(rc, rest))
    mine = [w for w in work if claims[w.item.run_key] is Claim.CLAIMED]
    results = [
        skipped(w, claims[w.item.run_key])
        for w in work
        if claims[w.item.run_key] is not Claim.CLAIMED
    ]
    if not mine or rc.stop.is_set():
        return results  # claimed keys are released when the run finishes
    try:
        done = do_all([w.payload for w in mine])
    except StopRequested:
        return results  # SIGTERM during a wait: the claimed keys are released at the end
    except BaseException as exc:
        rc.halt(f"{type(exc).__name__}: {exc}")  # start nothing new; the error ends the run
        with contextlib.suppress(DependencyError):  # the error to report is ``exc``
            for w in mine:
                _settle(rc, w.item.run_key, Outcome(False, error=f"{type(exc).__name__}: {exc}"))
        raise
    for w, result in zip(mine, done, strict=True):
        outcome = summarize(result)
        if not outcome.recorded:
            _settle(rc, w.item.run_key, outcome)
    return results + done


def _claim_all(rc: RunContext, work: Sequence[KeyedWork[Any]]) -> dict[str, Claim]:
    """Claim every key of ``work`` in one transaction, making the keys' rows in it too."""
    return claim_keys(rc, [w.item.run_key for w in work], items=[w.item for w in work])


def _settle(rc: RunContext, run_key: str, outcome: Outcome) -> None:
    """Record how a claimed key ended (unless its lease was lost: its new holder records it)."""
    if not runs.complete(
        rc.engine,
        run_key,
        owner=rc.owner,
        succeeded=outcome.succeeded,
        counts=outcome.counts,
        error=outcome.error,
    ):
        warn_taken_over(run_key)
