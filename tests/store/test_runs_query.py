"""`runs` filters are one query on SQLite and PostgreSQL alike (the grain read from the
run's JSON arguments)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from typer.testing import CliRunner

from fulcrum_sync.cli import app
from fulcrum_sync.domain import RunsQuery
from fulcrum_sync.store.engine import open_engine
from fulcrum_sync.store.reports import recent_runs

runner = CliRunner()


def test_filters_by_command_grain_outcome_and_start(cli_env: dict[str, str], db_url: str) -> None:
    for grain in ("day", "week"):
        args = ["sync", "-g", grain, "-t", "acme", "-m", "orders", "--no-patterns"]
        result = runner.invoke(app, args, env=cli_env)
        assert result.exit_code == 0, result.output
    engine = open_engine(db_url)
    try:
        everything = recent_runs(engine)
        assert [r["command"] for r in everything] == ["sync", "sync"]
        (week,) = recent_runs(engine, RunsQuery.parse(grain="weekly"))
        assert week["arguments"]["grain"] == "week"
        assert recent_runs(engine, RunsQuery(outcome="failed")) == []
        later = datetime.now(UTC) + timedelta(hours=1)
        assert recent_runs(engine, RunsQuery(since=later)) == []
        assert len(recent_runs(engine, RunsQuery(command="sync", limit=1))) == 1
    finally:
        engine.dispose()
    listed = runner.invoke(app, ["runs", "--grain", "day", "--json"], env=cli_env)
    assert [r["arguments"]["grain"] for r in json.loads(listed.stdout)] == ["day"]
