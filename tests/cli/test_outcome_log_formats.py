"""The exit code never depends on the log format (issue 23, item 6)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from cli_invoke import Cli, Ran
from sqlalchemy import Engine

from fulcrum_sync.domain import SinkError
from fulcrum_sync.domain.source_stats import SourceStats
from fulcrum_sync.services.deps import Deps
from fulcrum_sync.sinks.local import LocalSink
from fulcrum_sync.sources.base import FetchRequest, SeriesRow, SourceMetadata
from fulcrum_sync.store.engine import open_engine

SYNC = ("sync", "--grain", "day", "--tenant", "acme", "--cache-load")


class DownSink(LocalSink):
    """The local cache target, never reachable."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)

    def open(self) -> None:
        raise SinkError("Snowflake account xy123: cannot connect: connection refused")


def _events(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("log_format", ["json", "rich"])
def test_every_cache_load_failing_exits_1_in_every_log_format(
    tmp_path: Path, log_format: str
) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    engine = open_engine(url)
    cli = Cli(env={"FULCRUM_SYNC_DATABASE_URL": url}, today="2025-08-06")
    result = cli(*SYNC, "--log-format", log_format, deps=Deps(sink=DownSink(engine)))
    assert result.exit_code == 1, result.output
    if log_format == "json":
        finished = [e for e in _events(result.stdout) if e.get("event") == "sync finished"]
        assert finished and finished[-1]["outcome"] == "partial"
        assert finished[-1]["level"] == "error"
    assert cli("runs", "--json").json()[0]["outcome"] == "partial"
    status = cli("status", "--json", "--grain", "day").json()
    [cache] = [h for h in status["headlines"] if h["cause"] == "cache"]
    assert cache["endpoint"] == "Snowflake account xy123"  # grouped by the endpoint that failed
    assert cache["text"].startswith("Snowflake account xy123 failed: 3 day cache tables")
    engine.dispose()


CATALOG = """\
tenants:
  - tenant_id: 7
    identifier: acme
    metrics:
      - {metric_id: revenue, measure: orders.total, time_dimension: orders.created_at}
  - tenant_id: 8
    identifier: initech
    metrics:
      - {metric_id: revenue, measure: orders.total, time_dimension: orders.created_at}
"""


class UnscopedCube:
    """A Cube that ignores the tenant: every tenant gets the same rows, which lie in
    ``data_days`` (days of data, e.g. only in 2025-07); windows are recorded."""

    name = "cube"

    def __init__(self, data_days: list[date]) -> None:
        self.data_days = data_days
        self.windows: list[tuple[date, date]] = []

    def fetch_series(self, request: FetchRequest) -> list[SeriesRow]:
        self.windows.append((request.window.start, request.window.end))
        inside = [d for d in self.data_days if request.window.start <= d <= request.window.end]
        return [SeriesRow(d, float(n)) for n, d in enumerate(inside)]

    def fetch_metadata(self, tenant: str) -> SourceMetadata:
        return SourceMetadata(frozenset({"orders.total"}), frozenset({"orders.created_at"}))

    def stats(self) -> SourceStats:
        return SourceStats()

    def close(self) -> None:
        pass


def _discover(tmp_path: Path, source: UnscopedCube, today: str) -> Ran:
    cli = Cli(env={"FULCRUM_SYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'state.db'}"}, today=today)
    (tmp_path / "c.yaml").write_text(CATALOG)
    cli.ok("catalog", "load", str(tmp_path / "c.yaml"))
    args = ["--log-format", "json", "discover", "--grain", "day", "--check-source"]
    return cli(*args, deps=Deps(source=source))  # type: ignore[arg-type]


def test_discover_finished_event_says_what_the_exit_code_says(tmp_path: Path) -> None:
    july = [date(2025, 7, 1) + timedelta(days=n) for n in range(20)]
    source = UnscopedCube(july)
    result = _discover(tmp_path, source, "2025-08-06")
    assert result.exit_code == 1, result.output
    finished = [e for e in _events(result.stdout) if e.get("event") == "discover finished"]
    assert finished[-1]["outcome"] == "partial"
    assert finished[-1]["level"] == "error"
    assert "tenants acme, initech got identical answers" in str(finished[-1]["not_isolated"])


def test_the_probe_asks_for_the_period_the_sync_would_use(tmp_path: Path) -> None:
    """FULCRUM_SYNC_TODAY moves the probe; data older than a week still shows (item 9)."""
    july = [date(2025, 7, 1) + timedelta(days=n) for n in range(20)]
    source = UnscopedCube(july)
    result = _discover(tmp_path, source, "2025-09-15")  # the data is 2 months old
    assert result.exit_code == 1, result.output
    assert {end for _, end in source.windows} == {date(2025, 9, 14)}  # yesterday of TODAY
    assert all(start <= date(2025, 7, 1) for start, _ in source.windows)


def test_empty_answers_prove_nothing(tmp_path: Path) -> None:
    source = UnscopedCube([])  # no rows for anyone: an unscoped Cube whose data lies elsewhere
    result = _discover(tmp_path, source, "2025-08-06")
    assert result.exit_code == 1, result.output
    finished = [e for e in _events(result.stdout) if e.get("event") == "discover finished"]
    unknown = str(finished[-1]["isolation_unknown"])
    assert "cannot tell whether the source keeps tenants acme, initech apart" in unknown
    assert finished[-1]["outcome"] == "partial"
