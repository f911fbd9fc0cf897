"""Push a job's metrics to a Prometheus Pushgateway at its end (SPEC §7).

Batch jobs cannot be scraped: each job command (sync, patterns, backfill, cache-load,
discover, verify, state prune) pushes once as it ends, also when it failed or was stopped,
under the grouping key ``job="fulcrum-sync", command, grain`` (never the pod or host, so a
new pod replaces the old one's values instead of adding a series).

The push is a ``pushadd`` (HTTP POST): it replaces only the metric families it carries. A
successful run carries ``fulcrum_sync_last_success_timestamp_seconds``; a failed one does not,
so the last success survives every failure and a staleness alert keeps counting from it.

A push is bounded by a timeout, and a failed push is a warning: it never changes the exit
code of the job.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fulcrum_sync.domain import CacheLoadResult, PatternsRunResult, SyncRunResult
from fulcrum_sync.domain.backfill import BackfillResult
from fulcrum_sync.domain.source_stats import SourceStats

log = logging.getLogger(__name__)

JOB = "fulcrum-sync"
PREFIX = "fulcrum_sync_"
# Every metric a job pushes, with its help text: the dashboard and the alerts use only these.
PUSHED: dict[str, str] = {
    "fulcrum_sync_last_success_timestamp_seconds": "When the command last succeeded (Unix "
    "time); pushed only by a successful run.",
    "fulcrum_sync_last_run_timestamp_seconds": "When the command last ended, however it ended.",
    "fulcrum_sync_last_run_failed": "1 when the command's last run did not succeed, else 0.",
    "fulcrum_sync_exit_code": "The exit code of the command's last run.",
    "fulcrum_sync_duration_seconds": "Wall time of the command's last run.",
    "fulcrum_sync_contexts": "Contexts (or keys) of the last run by outcome.",
    "fulcrum_sync_rows_stored": "Series rows the last run stored.",
    "fulcrum_sync_cache_tables_loaded": "Cache tables the last run loaded.",
    "fulcrum_sync_source_requests": "Requests the last run sent to the source.",
    "fulcrum_sync_source_retries": "Retries the last run spent on source requests.",
    "fulcrum_sync_source_throttled": "429 answers the last run got from the source.",
    "fulcrum_sync_contexts_behind": "Active contexts of the grain lacking the last complete "
    "period after the run (pushed by sync).",
}


@dataclass(slots=True)
class JobFigures:
    """What a job did, in the units the metrics carry."""

    contexts: dict[str, int] = field(default_factory=dict)
    rows_stored: int = 0
    cache_tables_loaded: int = 0
    source: SourceStats | None = None
    contexts_behind: int | None = None  # sync only: counted after its work


@dataclass(slots=True)
class JobRun:
    """One job command's run, as pushed: who it is, how it ended, what it did."""

    command: str
    grain: str
    exit_code: int
    duration_seconds: float
    figures: JobFigures = field(default_factory=JobFigures)
    ended_at: float = field(default_factory=time.time)

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0

    def grouping_key(self) -> dict[str, str]:
        return {"command": self.command, "grain": self.grain}


def _sync(result: SyncRunResult) -> JobFigures:
    loads = sum(1 for c in result.contexts if c.cache and c.cache.status == "succeeded")
    loads += result.tally.cache_loads.get("succeeded", 0)
    return JobFigures(result.status_counts(), result.rows_stored, loads, result.source)


def _backfill(result: BackfillResult) -> JobFigures:
    counts = {
        "succeeded": result.done,
        "failed": result.failed,
        "skipped": result.already_done,
        "busy": result.busy,
    }
    return JobFigures(counts, result.rows_fetched, 0, SourceStats(requests=result.source_queries))


def _patterns(result: PatternsRunResult) -> JobFigures:
    return JobFigures(result.totals())


def _cache_load(result: CacheLoadResult) -> JobFigures:
    counts: dict[str, int] = {}
    for c in result.contexts:
        counts[c.status] = counts.get(c.status, 0) + 1
    rows = sum(c.rows for c in result.contexts if c.status == "succeeded")
    return JobFigures(counts, rows, counts.get("succeeded", 0))


_FIGURES: dict[type, Callable[[Any], JobFigures]] = {
    SyncRunResult: _sync,
    BackfillResult: _backfill,
    PatternsRunResult: _patterns,
    CacheLoadResult: _cache_load,
}


def figures_of(result: object) -> JobFigures:
    """The figures of a job's result (empty for a result without any: discover, prune).

    A result type may also say its own: a ``job_figures()`` method returning a dict of
    outcome counts (``verify``).
    """
    for kind, figures in _FIGURES.items():
        if isinstance(result, kind):
            return figures(result)
    own = getattr(result, "job_figures", None)
    if callable(own):
        return JobFigures(dict(own()))
    return JobFigures()


def build_registry(run: JobRun) -> Any:
    """A registry holding the run's metrics (the last success only when it succeeded)."""
    from prometheus_client import CollectorRegistry, Gauge

    registry = CollectorRegistry()

    def gauge(name: str, value: float) -> None:
        Gauge(name, PUSHED[name], registry=registry).set(value)

    if run.succeeded:
        gauge("fulcrum_sync_last_success_timestamp_seconds", run.ended_at)
    gauge("fulcrum_sync_last_run_timestamp_seconds", run.ended_at)
    gauge("fulcrum_sync_last_run_failed", 0 if run.succeeded else 1)
    gauge("fulcrum_sync_exit_code", run.exit_code)
    gauge("fulcrum_sync_duration_seconds", run.duration_seconds)
    f = run.figures
    contexts = Gauge(
        "fulcrum_sync_contexts", PUSHED["fulcrum_sync_contexts"], ["outcome"], registry=registry
    )
    for outcome, n in sorted(f.contexts.items()):
        contexts.labels(outcome=outcome).set(n)
    gauge("fulcrum_sync_rows_stored", f.rows_stored)
    gauge("fulcrum_sync_cache_tables_loaded", f.cache_tables_loaded)
    source = f.source or SourceStats()
    gauge("fulcrum_sync_source_requests", source.requests)
    gauge("fulcrum_sync_source_retries", source.retries)
    gauge("fulcrum_sync_source_throttled", source.throttled)
    if f.contexts_behind is not None:
        gauge("fulcrum_sync_contexts_behind", f.contexts_behind)
    return registry


def push(url: str, run: JobRun, *, timeout: float) -> bool:
    """Push ``run``'s metrics to the Pushgateway at ``url`` (pushadd); return whether it went.

    Never raises: a push that fails (unreachable, refused, too slow) is logged as a warning.
    """
    from prometheus_client import pushadd_to_gateway

    from fulcrum_sync.logs import log_event
    from fulcrum_sync.secrets import redact

    try:
        pushadd_to_gateway(
            url,
            job=JOB,
            registry=build_registry(run),
            grouping_key=run.grouping_key(),
            timeout=timeout,
        )
    except Exception as exc:  # any failure to push: the job's own outcome stands
        log_event(
            log,
            "could not push metrics to the Pushgateway",
            logging.WARNING,
            endpoint=redact(url),
            error=redact(f"{type(exc).__name__}: {exc}"),
            command=run.command,
        )
        return False
    return True
