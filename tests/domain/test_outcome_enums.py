"""Outcomes are types, decided once: every member has an exit code, and ``derive_outcome``
decides a run's outcome from what happened (issue 23, item 6)."""

from __future__ import annotations

import pytest

from fulcrum_sync.cli._common import OUTCOME_CODES, exit_code
from fulcrum_sync.domain import (
    FAILED_OUTCOMES,
    FINISHED_OUTCOMES,
    DependencyError,
    InputError,
    RunOutcome,
    StopRequested,
    TenantRefusedError,
    derive_outcome,
)


def test_every_run_outcome_has_an_exit_code() -> None:
    assert set(OUTCOME_CODES) == set(RunOutcome)
    assert {exit_code(o) for o in RunOutcome} <= {0, 1, 2, 3, 143}
    assert exit_code(RunOutcome.SUCCEEDED) == 0
    assert exit_code(RunOutcome.PARTIAL) == 1
    assert exit_code(RunOutcome.REFUSED) == exit_code(RunOutcome.INVALID) == 2
    assert exit_code(RunOutcome.FAILED) == 3
    assert exit_code(RunOutcome.INTERRUPTED) == 143
    assert exit_code(RunOutcome.ABANDONED) != 0  # a dead run never reads as success


def test_only_success_exits_0_and_only_failed_like_outcomes_are_failures() -> None:
    assert [o for o in RunOutcome if exit_code(o) == 0] == [RunOutcome.SUCCEEDED]
    assert RunOutcome.SUCCEEDED not in FAILED_OUTCOMES
    assert RunOutcome.RUNNING not in FINISHED_OUTCOMES
    assert FAILED_OUTCOMES <= FINISHED_OUTCOMES


def test_an_unknown_outcome_word_is_an_error_not_a_silent_143() -> None:
    with pytest.raises(ValueError):
        exit_code("bogus")  # type: ignore[arg-type]
    assert RunOutcome.parse("bogus") is None
    assert RunOutcome.parse("abandoned") is RunOutcome.ABANDONED


def test_errors_map_by_type() -> None:
    assert exit_code(InputError("x")) == 2
    assert exit_code(DependencyError("x")) == 3
    assert exit_code(RuntimeError("x")) == 1
    assert exit_code(StopRequested("x")) == 143  # a wait (source or database) woke on SIGTERM
    assert exit_code(TenantRefusedError("x")) == 2  # alone it ends a command as configuration


@pytest.mark.parametrize(
    ("happened", "outcome"),
    [
        ({}, RunOutcome.SUCCEEDED),
        ({"failed": 1, "attempted": 3}, RunOutcome.PARTIAL),
        ({"failed": 3, "attempted": 3, "outage_failures": 3}, RunOutcome.FAILED),
        ({"failed": 3, "attempted": 3, "outage_failures": 2}, RunOutcome.PARTIAL),
        ({"halted": True, "failed": 1}, RunOutcome.FAILED),
        ({"interrupted": True, "halted": True}, RunOutcome.INTERRUPTED),
        ({"refused": True, "interrupted": True}, RunOutcome.REFUSED),
        ({"invalid": True}, RunOutcome.INVALID),
        ({"invalid": True, "halted": True}, RunOutcome.FAILED),
    ],
)
def test_derive_outcome(happened: dict[str, int | bool], outcome: RunOutcome) -> None:
    assert derive_outcome(**happened) is outcome  # type: ignore[arg-type]
