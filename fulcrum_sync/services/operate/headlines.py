"""Group ``status``'s problems by cause: one headline each, and whether a person must act.

Causes, per grain:

- **outage**: series failing because an endpoint (``Cube at …``, ``PostgreSQL at …``) was
  unreachable; with the last sync of the grain stopped by it, every context behind at the
  grain counts (the ones not started were released, not failed). The next scheduled run
  retries it; once two syncs in a row failed, a person must look.
- **refused**: the source refused the credentials (HTTP 401/403): always a person.
- **failing**: other failures (a rejected query): a person, or the repeat rule as above.
- **never_synced** / **behind**: contexts without a failure; the next scheduled run syncs
  them, unless they are further behind than one catch-up takes (a backfill: a person).
- **patterns**, **holes**, **cache**: from ``problems.py`` and ``holes.py``.
- **abandoned**: runs closed as ``abandoned`` (their process died unrecorded) since the
  last success of the same job: a person finds out why.
- **last_run**: the last sync of a grain failed and nothing above explains it.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from fulcrum_sync.domain import (
    FAILED_OUTCOMES,
    Grain,
    Headline,
    Problem,
    RunOutcome,
    StatusReport,
    catch_up_command,
    endpoint_of,
)

_REFUSED = re.compile(
    r"HTTP 40[134]\b|authentication failed|refused (?:the|our) credentials|[Ii]nvalid token"
)
_REJECTED = re.compile(r"HTTP 400\b|rejected|UserError")
_SEVERITY = {"refused": 0, "failing": 1, "outage": 2}
RETRY_NOTE = "the next scheduled run retries it"


def classify(error: str | None) -> str:
    """``refused``, ``failing`` (a rejected query or other error) or ``outage``."""
    text = error or ""
    if _REFUSED.search(text):
        return "refused"
    if _REJECTED.search(text):
        return "failing"
    return "outage"


def when(moment: datetime | None, now: datetime) -> str:
    """``02:00 UTC`` today, ``2025-09-10 02:00 UTC`` another day."""
    if moment is None:
        return "an unknown time"
    return f"{moment:%H:%M} UTC" if moment.date() == now.date() else f"{moment:%Y-%m-%d %H:%M} UTC"


def sync_runs_of(runs: Sequence[dict[str, Any]], grain: Grain) -> list[dict[str, Any]]:
    """The sync runs of ``grain`` among ``runs`` (newest first), finished ones only."""
    return [
        r
        for r in runs
        if r.get("command") == "sync"
        and (r.get("arguments") or {}).get("grain") == grain.value
        and r.get("outcome") not in (None, RunOutcome.RUNNING)
    ]


def failed_streak(runs: Sequence[dict[str, Any]]) -> int:
    """How many of the newest ``runs`` in a row did not succeed."""
    streak = 0
    for run in runs:
        if RunOutcome.parse(run.get("outcome")) not in FAILED_OUTCOMES:
            break
        streak += 1
    return streak


def build(
    report: StatusReport,
    sync_runs: Sequence[dict[str, Any]],
    default_endpoint: str | None,
) -> list[Headline]:
    """Every headline of ``report`` (people's first), from its problems, failing series and
    abandoned runs; ``sync_runs``: recent sync runs, newest first."""
    now = report.generated_at
    found: list[Headline] = []
    for fresh in report.freshness:
        grain = fresh.grain
        runs = sync_runs_of(sync_runs, grain)
        problems = [p for p in report.problems if p.grain is grain]
        rows = [r for r in report.failing_series if r["grain"] == grain.value]
        failures, taken = _failures(grain, rows, problems, runs, default_endpoint, now)
        found += failures
        found += _grouped(
            grain, [p for p in problems if p.context not in taken or p.kind != "behind"]
        )
    found += _abandoned(report.abandoned_runs, [*report.runs, *sync_runs], now)
    return sorted(found, key=lambda h: not h.needs_person)


def _failures(
    grain: Grain,
    rows: list[dict[str, Any]],
    problems: list[Problem],
    runs: list[dict[str, Any]],
    default_endpoint: str | None,
    now: datetime,
) -> tuple[list[Headline], set[str]]:
    """Outage, refused and failing headlines of one grain, and the last run's failure; and
    the contexts they cover."""
    causes: dict[str, tuple[str, str | None, datetime | None]] = {}
    for row in rows:
        name = f"{row['tenant']}::{row['metric_id']}"
        cause = classify(row["error"])
        endpoint = endpoint_of(row["error"]) or (default_endpoint if cause != "failing" else None)
        known = causes.get(name)
        if known is None or _SEVERITY[cause] < _SEVERITY[known[0]]:
            causes[name] = (cause, endpoint, row["failing_since"])
    groups: dict[tuple[str, str | None], list[str]] = defaultdict(list)
    since: dict[tuple[str, str | None], datetime] = {}
    for name, (cause, endpoint, first) in causes.items():
        groups[(cause, endpoint)].append(name)
        if first is not None:
            since[(cause, endpoint)] = min(first, since.get((cause, endpoint), first))
    streak = failed_streak(runs)
    last = runs[0] if runs else None
    stopped = last is not None and last.get("outcome") in (RunOutcome.FAILED, RunOutcome.REFUSED)
    behind = sorted({p.context for p in problems if p.kind == "behind"} - set(causes))
    # The contexts a stopped run never started were released: the cause that stopped it
    # (refused credentials first, else an outage) holds them too.
    stoppers = sorted((k for k in groups if k[0] in ("refused", "outage")), key=_cause_order)
    if stopped and stoppers:
        groups[stoppers[0]] += behind
    found = [
        _failure_headline(
            grain, cause, endpoint, sorted(names), since.get((cause, endpoint)), streak, now
        )
        for (cause, endpoint), names in sorted(groups.items(), key=lambda kv: _SEVERITY[kv[0][0]])
    ]
    if last is not None and not groups and RunOutcome.parse(last.get("outcome")) in FAILED_OUTCOMES:
        found.append(_last_run(grain, last, streak, default_endpoint, now))
    return found, {name for names in groups.values() for name in names}


def _cause_order(key: tuple[str, str | None]) -> tuple[int, str]:
    return (_SEVERITY[key[0]], key[1] or "")


def _failure_headline(
    grain: Grain,
    cause: str,
    endpoint: str | None,
    names: list[str],
    since: datetime | None,
    streak: int,
    now: datetime,
) -> Headline:
    where = endpoint or "the source"
    count = f"{len(names)} {grain.value} context{'s' if len(names) != 1 else ''}"
    command = catch_up_command(grain)
    if cause == "refused":
        text = f"{where} refused the credentials since {when(since, now)}: {count} not synced"
        note = "a person must fix the secret or token claim (`fulcrum-sync doctor` checks it)"
        return Headline(
            cause, grain.value, text, True, note, "fulcrum-sync doctor", endpoint, since, names
        )
    repeated = streak >= 2
    if cause == "outage":
        text = f"{where} unreachable since {when(since, now)}: {count} behind"
        note = f"failed {streak} syncs in a row: check {where}" if repeated else RETRY_NOTE
        return Headline(cause, grain.value, text, repeated, note, command, endpoint, since, names)
    text = f"{count} failing since {when(since, now)} (a query the source rejected, or an error)"
    note = "a person must fix the query or the catalog (`--verbose` shows each error)"
    return Headline(cause, grain.value, text, True, note, command, endpoint, since, names)


def _last_run(
    grain: Grain, run: dict[str, Any], streak: int, default_endpoint: str | None, now: datetime
) -> Headline:
    summary = run.get("summary") or {}
    error = str(summary.get("halted") or summary.get("error") or "")
    endpoint = endpoint_of(error) or (default_endpoint if error else None)
    outcome = run.get("outcome")
    text = (
        f"last {grain.value} sync (run {str(run['run_id'])[:8]}) {outcome} at "
        f"{when(run.get('started_at'), now)}" + (f": {error[:90]}" if error else "")
    )
    person = streak >= 2 or outcome == RunOutcome.REFUSED
    note = f"{streak} syncs in a row did not succeed" if person else RETRY_NOTE
    command = f"fulcrum-sync runs show {str(run['run_id'])[:8]}"
    return Headline(
        "last_run", grain.value, text, person, note, command, endpoint, run.get("started_at")
    )


_KINDS = {
    "behind": "contexts behind",
    "patterns": "context-periods with unfinished pattern keys",
    "holes": "synced context-periods missing pattern results",
    "cache": "cache tables older than their series",
}


def _grouped(grain: Grain, problems: list[Problem]) -> list[Headline]:
    """Never-synced, behind, patterns, holes and cache headlines of one grain."""
    found: list[Headline] = []
    behind = [p for p in problems if p.kind == "behind"]
    failing = {p.context for p in problems if p.kind == "failing"}
    behind = [p for p in behind if p.context not in failing]
    never = [p for p in behind if p.period is None and p.by_schedule]
    if never:
        text = f"{len(never)} {grain.value} contexts never synced"
        note = "the next scheduled run syncs them (a first sync is FULL)"
        found.append(_headline("never_synced", grain, text, never, note, catch_up_command(grain)))
    rest = [p for p in behind if p not in never]
    for kind in ("behind", "patterns", "holes", "cache"):
        items = rest if kind == "behind" else [p for p in problems if p.kind == kind]
        groups: dict[tuple[bool, str | None], list[Problem]] = defaultdict(list)
        for p in items:  # a cache target that failed is named: ``Snowflake account xy123``
            groups[(p.by_schedule, endpoint_of(p.detail) if kind == "cache" else None)].append(p)
        for (by_schedule, endpoint), chosen in sorted(groups.items(), key=_group_order):
            found.append(_kind_headline(kind, grain, chosen, by_schedule, endpoint))
    return found


def _group_order(item: tuple[tuple[bool, str | None], list[Problem]]) -> tuple[bool, str]:
    (by_schedule, endpoint), _ = item
    return (by_schedule, endpoint or "")


def _kind_headline(
    kind: str, grain: Grain, chosen: list[Problem], by_schedule: bool, endpoint: str | None
) -> Headline:
    text = f"{len(chosen)} {grain.value} {_KINDS[kind]}"
    if endpoint is not None:
        text = f"{endpoint} failed: {len(chosen)} {grain.value} cache tables not loaded"
    note = chosen[0].schedule_note.split(": ", 1)[-1]
    if by_schedule:
        command = (
            catch_up_command(grain)
            if kind != "cache"
            else f"fulcrum-sync cache-load --grain {grain.value}"
        )
        note = f"the next scheduled run does it ({note})"
    else:
        command = chosen[0].command
        more = f"; {len(chosen) - 1} more with --verbose" if len(chosen) > 1 else ""
        note = f"a person must run it ({note}{more})"
    names = sorted({p.context for p in chosen})
    return Headline(kind, grain.value, text, not by_schedule, note, command, endpoint, None, names)


def _headline(
    cause: str,
    grain: Grain,
    text: str,
    items: list[Problem],
    note: str,
    command: str,
    needs_person: bool = False,
) -> Headline:
    names = sorted({p.context for p in items})
    return Headline(cause, grain.value, text, needs_person, note, command, contexts=names)


def _abandoned(
    abandoned: Sequence[dict[str, Any]], runs: Sequence[dict[str, Any]], now: datetime
) -> list[Headline]:
    """Abandoned runs newer than the last success of the same command and grain."""

    def job(run: dict[str, Any]) -> tuple[str, Any]:
        return (str(run.get("command")), (run.get("arguments") or {}).get("grain"))

    succeeded: dict[tuple[str, Any], datetime] = {}
    for run in runs:
        if run.get("outcome") == RunOutcome.SUCCEEDED:
            succeeded[job(run)] = max(run["started_at"], succeeded.get(job(run), run["started_at"]))
    found = []
    for run in abandoned:
        later = succeeded.get(job(run))
        if later is not None and later > run["started_at"]:
            continue
        command, grain = job(run)
        run_id = str(run["run_id"])[:8]
        text = (
            f"run {run_id} ({command}{' ' + grain if grain else ''}) abandoned: started "
            f"{when(run['started_at'], now)} on {run.get('host')}, its process died unrecorded"
        )
        note = "a person finds out why (killed, out of memory); the next run retakes its keys"
        found.append(
            Headline("abandoned", grain, text, True, note, f"fulcrum-sync runs show {run_id}")
        )
    return found
