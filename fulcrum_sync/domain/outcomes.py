"""How runs, run keys and series end: enums with their meaning beside them, decided once.

As Dagster's ``DagsterRunStatus`` does, every layer imports these; "is this finished?" and
"is this a failure?" are sets next to the enum, never strings compared in several places.
They are ``StrEnum``s: a member equals its stored string (``RunOutcome.FAILED == "failed"``),
so the database and the JSON output keep the same words.

``derive_outcome`` is the one function that decides a run's outcome from what happened;
``cli._common.exit_code`` is the one that maps an outcome to an exit code.
"""

from __future__ import annotations

from enum import StrEnum


class RunOutcome(StrEnum):
    """How one invocation ended (the ``runs.outcome`` column)."""

    RUNNING = "running"  # no end recorded yet (the process works, or died unrecorded)
    SUCCEEDED = "succeeded"  # everything asked for was done                         (0)
    PARTIAL = "partial"  # finished; some work failed, the rest committed             (1)
    FAILED = "failed"  # a dependency went down and the run stopped early             (3)
    REFUSED = "refused"  # the source refused our credentials: a setting is wrong     (2)
    INVALID = "invalid"  # a check found bad configuration (doctor, discover)         (2)
    INTERRUPTED = "interrupted"  # SIGTERM/SIGINT: work in flight finished, rest released (143)
    ABANDONED = "abandoned"  # left ``running`` by a process that is gone; closed by the next

    @classmethod
    def parse(cls, value: str | None) -> RunOutcome | None:
        """The member named ``value`` (None for None or a word this version does not know)."""
        try:
            return cls(value) if value is not None else None
        except ValueError:
            return None


#: Outcomes of a run that has ended.
FINISHED_OUTCOMES = frozenset(set(RunOutcome) - {RunOutcome.RUNNING})
#: Outcomes that mean something did not get done.
FAILED_OUTCOMES = frozenset(
    {
        RunOutcome.PARTIAL,
        RunOutcome.FAILED,
        RunOutcome.REFUSED,
        RunOutcome.INVALID,
        RunOutcome.ABANDONED,
    }
)


class KeyStatus(StrEnum):
    """The status of one run key (the ``run_items.status`` column)."""

    PENDING = "pending"  # created, not claimed yet
    RUNNING = "running"  # claimed; its lease says until when
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RELEASED = "released"  # claimed, then given back unworked (a stop, an outage)


#: Key statuses the next run that covers the key will work (without ``--force``).
UNFINISHED_KEYS = frozenset({KeyStatus.PENDING, KeyStatus.RELEASED, KeyStatus.FAILED})
FAILED_KEYS = frozenset({KeyStatus.FAILED})


class SeriesStatus(StrEnum):
    """The last sync of one series (``metric_sync_status.status``)."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"


class ContextStatus(StrEnum):
    """How one context's work ended in one run."""

    SUCCEEDED = "succeeded"
    PARTIAL = "partial"  # some of its series or patterns failed
    FAILED = "failed"
    SKIPPED = "skipped"  # already done, or another process holds it


FAILED_CONTEXTS = frozenset({ContextStatus.PARTIAL, ContextStatus.FAILED})


class PatternStatus(StrEnum):
    """How one pattern run ended in one run (a pattern's ``status`` in ``--json``)."""

    SUCCEEDED = "succeeded"
    SKIPPED = "skipped"  # too little data, its dimension failed, or see SkipReason
    FAILED = "failed"


class SkipReason(StrEnum):
    """Why work was skipped because of its run key, worded the same by every command
    (``skipped (already done)``): a pattern's ``skip_reason`` in ``--json``."""

    ALREADY_DONE = "already done"  # another run did it; --force runs it again
    BUSY = "claimed by another running process"


#: Skips that are another run's work (not this run's to report or count as its own).
CLAIMED_ELSEWHERE = frozenset({SkipReason.ALREADY_DONE, SkipReason.BUSY})


class Health(StrEnum):
    """What ``status`` says as a whole (its ``health`` field and exit code)."""

    HEALTHY = "healthy"  # nothing to do                                               (0)
    HEALING = "healing"  # something is off, and the next scheduled run fixes it       (0)
    NEEDS_ATTENTION = "needs_attention"  # a person must act                           (1)
    NOTHING_TO_WATCH = "nothing_to_watch"  # no database, catalog or run to judge      (2)


def derive_outcome(
    *,
    refused: bool = False,
    invalid: bool = False,
    interrupted: bool = False,
    halted: bool = False,
    failed: int = 0,
    attempted: int = 0,
    outage_failures: int = 0,
) -> RunOutcome:
    """Decide how a run ended from what happened (SPEC §2), the same for every log format.

    :param refused: the source refused our credentials (exit 2).
    :param invalid: a check found configuration wrong (exit 2).
    :param interrupted: a SIGTERM/SIGINT stopped the run (143).
    :param halted: a dependency went down and the run stopped early (3).
    :param failed: how many pieces of work failed (a context, a pattern, a cache load).
    :param attempted: how many pieces of work were tried (not skipped).
    :param outage_failures: how many of the failed ones failed because a dependency was
        down; when every attempted piece failed that way the run ``failed`` (3).
    """
    if refused:
        return RunOutcome.REFUSED
    if interrupted:
        return RunOutcome.INTERRUPTED
    if halted or (attempted > 0 and outage_failures >= attempted):
        return RunOutcome.FAILED
    if invalid:
        return RunOutcome.INVALID
    return RunOutcome.PARTIAL if failed else RunOutcome.SUCCEEDED
