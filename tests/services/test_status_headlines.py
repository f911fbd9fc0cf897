"""Headlines group status problems by cause and say whether a person must act."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from fulcrum_sync.domain import Freshness, Grain, Health, Problem, StatusReport, decide_health
from fulcrum_sync.services.operate import headlines

NOW = datetime(2025, 9, 10, 2, 30, tzinfo=UTC)
EXPECTED = date(2025, 9, 9)
CUBE = "Cube at http://cube:4000/cubejs-api"


def _report(errors: dict[str, str], behind: list[str]) -> StatusReport:
    rows = [
        {
            "tenant": name.split("::")[0],
            "metric_id": name.split("::")[1],
            "grain": "day",
            "dimension": "",
            "period": EXPECTED,
            "failing_since": NOW - timedelta(minutes=30),
            "error": error,
        }
        for name, error in errors.items()
    ]
    problems = [
        Problem("behind", Grain.DAY, name, "never synced", "cmd", True, "yes: soon", None)
        for name in behind
    ]
    fresh = Freshness(Grain.DAY, EXPECTED, len(behind), 0)
    return StatusReport(NOW, [], rows, [], [fresh], problems=problems)


def _runs(*outcomes: str) -> list[dict[str, Any]]:
    return [
        {
            "run_id": f"{n:08d}-run",
            "command": "sync",
            "arguments": {"grain": "day"},
            "outcome": outcome,
            "started_at": NOW - timedelta(days=n),
        }
        for n, outcome in enumerate(outcomes)
    ]


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (f"{CUBE}: HTTP 403 Forbidden: Invalid token", "refused"),
        ("Cube refused our credentials (HTTP 401)", "refused"),
        (f"{CUBE}: acme::m (day): Cube authentication failed (HTTP 403: x): check", "refused"),
        (f"{CUBE}: acme::m (day): Cube answered HTTP 404 for /v1/load: check", "refused"),
        (f"{CUBE}: acme::m (day): Cube rejected the query (HTTP 422)", "failing"),
        (f"{CUBE}: HTTP 400: unknown member orders.x (UserError)", "failing"),
        (f"{CUBE}: connection failed (ConnectError)", "outage"),
        ("not sent: Cube is down since 02:00Z", "outage"),
    ],
)
def test_classify(error: str, cause: str) -> None:
    assert headlines.classify(error) == cause


def test_one_outage_is_one_headline_counting_every_context_behind() -> None:
    names = [f"acme::m{i}" for i in range(5)]
    report = _report({n: f"{CUBE}: connection failed" for n in names[:2]}, names)
    found = headlines.build(report, _runs("failed", "succeeded"), None)
    assert [h.cause for h in found] == ["outage"]
    [outage] = found
    assert outage.text == f"{CUBE} unreachable since 02:00 UTC: 5 day contexts behind"
    assert outage.endpoint == CUBE and not outage.needs_person
    assert outage.command == "fulcrum-sync sync --grain day --catch-up"
    assert decide_health(found) is Health.HEALING


def test_an_outage_two_syncs_in_a_row_needs_a_person() -> None:
    report = _report({"acme::m0": "connection failed"}, ["acme::m0"])
    [outage] = headlines.build(report, _runs("failed", "failed"), CUBE)
    assert outage.needs_person and outage.endpoint == CUBE  # the default names the source
    assert decide_health([outage]) is Health.NEEDS_ATTENTION


def test_refused_credentials_always_need_a_person() -> None:
    report = _report({"acme::m0": f"{CUBE}: HTTP 403: Invalid token"}, ["acme::m0"])
    [refused] = headlines.build(report, _runs("refused"), None)
    assert refused.cause == "refused" and refused.needs_person
    assert refused.text.startswith(f"{CUBE} refused the credentials since 02:00 UTC")


def test_never_synced_only_is_healing() -> None:
    found = headlines.build(_report({}, ["acme::a", "acme::b"]), _runs("succeeded"), None)
    assert [(h.cause, h.text, h.needs_person) for h in found] == [
        ("never_synced", "2 day contexts never synced", False)
    ]


def test_every_cause_of_different_endpoints_is_its_own_headline() -> None:
    other = "Cube at http://cube-eu:4000"
    report = _report(
        {"acme::a": f"{CUBE}: timed out", "umbrella::b": f"{other}: connection refused"},
        ["acme::a", "umbrella::b"],
    )
    found = headlines.build(report, _runs("partial"), None)
    assert sorted(h.endpoint or "" for h in found) == sorted([CUBE, other])
