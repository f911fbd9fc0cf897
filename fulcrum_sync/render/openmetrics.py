"""``status --format openmetrics``: freshness gauges per grain for a textfile collector.

node-exporter's textfile collector (or any scraper of a file) reads what a cron job writes:

    fulcrum-sync status --format openmetrics > /var/lib/node_exporter/fulcrum_sync.prom.$$ &&
      mv /var/lib/node_exporter/fulcrum_sync.prom.$$ /var/lib/node_exporter/fulcrum_sync.prom

Every gauge carries a ``grain`` label; ``STATUS_GAUGES`` names them all (the alerts and the
dashboard in ``k8s/monitoring/`` use only these and the pushed ones).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

from fulcrum_sync.domain import Freshness, StatusReport, shift_period

STATUS_GAUGES: dict[str, str] = {
    "fulcrum_sync_status_contexts": "Active contexts of the grain.",
    "fulcrum_sync_status_contexts_behind": "Active contexts whose last successful sync is "
    "older than the last complete period.",
    "fulcrum_sync_status_periods_behind": "Periods the furthest-behind context lacks "
    "(contexts never synced are counted in contexts_behind only).",
    "fulcrum_sync_status_expected_period_timestamp_seconds": "Start of the last complete "
    "period (Unix time): what every context should have.",
    "fulcrum_sync_status_synced_period_timestamp_seconds": "Start of the latest period every "
    "synced context has (Unix time): the grain's last successful sync period.",
    "fulcrum_sync_status_last_success_timestamp_seconds": "When the grain's last successful "
    "sync run ended (Unix time), among the recent runs.",
    "fulcrum_sync_status_healthy": "1 when nothing of the grain is failing or behind.",
}


def _seconds(day: date) -> float:
    return datetime.combine(day, datetime.min.time(), UTC).timestamp()


def _last_success(runs: Iterable[dict[str, Any]], grain: str) -> float | None:
    ends = [
        r["finished_at"]
        for r in runs
        if r.get("command") == "sync"
        and r.get("outcome") == "succeeded"
        and (r.get("arguments") or {}).get("grain") == grain
        and r.get("finished_at") is not None
    ]
    return max(ends).timestamp() if ends else None


def _values(report: StatusReport, fresh: Freshness) -> dict[str, float | None]:
    lags = [b.get("periods_behind") for b in fresh.behind]
    never = sum(1 for n in lags if n is None)  # contexts never synced
    lag = max((n for n in lags if n is not None), default=0)
    synced = shift_period(fresh.grain, fresh.expected_period, -lag)
    grain = fresh.grain.value
    failing = any(s.get("grain") == grain for s in report.failing_series)
    problems = any(p.grain == fresh.grain for p in report.problems)
    return {
        "fulcrum_sync_status_contexts": fresh.contexts,
        "fulcrum_sync_status_contexts_behind": len(fresh.behind),
        "fulcrum_sync_status_periods_behind": lag,
        "fulcrum_sync_status_expected_period_timestamp_seconds": _seconds(fresh.expected_period),
        "fulcrum_sync_status_synced_period_timestamp_seconds": (
            _seconds(synced) if fresh.contexts > never else None
        ),
        "fulcrum_sync_status_last_success_timestamp_seconds": _last_success(report.runs, grain),
        "fulcrum_sync_status_healthy": 0 if (fresh.behind or failing or problems) else 1,
    }


def status_openmetrics(report: StatusReport) -> str:
    """The status report's freshness as OpenMetrics text (ending ``# EOF``)."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import GaugeMetricFamily
    from prometheus_client.openmetrics.exposition import generate_latest

    families = {
        name: GaugeMetricFamily(name, text, labels=["grain"])
        for name, text in STATUS_GAUGES.items()
    }
    for fresh in report.freshness:
        for name, value in _values(report, fresh).items():
            if value is not None:
                families[name].add_metric([fresh.grain.value], float(value))

    class _Report:
        def collect(self) -> Iterable[GaugeMetricFamily]:
            return list(families.values())

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Report())
    text: bytes = generate_latest(registry)  # type: ignore[no-untyped-call]
    return text.decode()
