"""`status` names the fix of every problem, and each fix, run as printed, fixes it.

One database with a context behind (its dimension's queries rejected since D-4), that
failing series, pattern keys a stopped run released, and a cache table older than its
series. Then the source is mended and every suggested command is run literally.
"""

from __future__ import annotations

import json
import shlex
from datetime import date, timedelta
from importlib import resources
from pathlib import Path

import yaml
from cli_invoke import Cli
from sqlalchemy import update
from wrapped_source import WrappedSource

from fulcrum_sync.domain import QueryRejectedError
from fulcrum_sync.services.deps import Deps
from fulcrum_sync.sources.base import FetchRequest, SeriesRow
from fulcrum_sync.sources.demo import DemoSource
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import open_engine

D = date(2025, 8, 9)  # the last complete day when today is 2025-08-10


class Rejecting(WrappedSource):
    """The demo source, rejecting the queries of acme::orders by channel while ``broken``."""

    def __init__(self) -> None:
        super().__init__(DemoSource(42))
        self.broken = False
        self.no_rows_after: date | None = None  # a source with no data yet for later days

    def fetch_series(self, request: FetchRequest) -> list[SeriesRow]:
        dim = request.dimension.dimension_id if request.dimension else None
        if self.broken and (request.metric.metric_id, dim) == ("orders", "channel"):
            raise QueryRejectedError("Cube rejected the query: unknown member orders.channel")
        rows = self.inner.fetch_series(request)
        return [r for r in rows if self.no_rows_after is None or r.date <= self.no_rows_after]


def acme_catalog(path: Path) -> Path:
    """The demo catalog with acme's new_revenue and orders only (two day contexts)."""
    text = resources.files("fulcrum_sync").joinpath("data", "demo_catalog.yaml").read_text("utf-8")
    catalog = yaml.safe_load(text)
    (acme,) = [tenant for tenant in catalog["tenants"] if tenant["identifier"] == "acme"]
    acme["metrics"] = [m for m in acme["metrics"] if m["metric_id"] in ("new_revenue", "orders")]
    path.write_text(yaml.safe_dump({"tenants": [acme]}), encoding="utf-8")
    return path


def test_every_suggested_command_run_as_printed_fixes_its_problem(
    db_url: str, tmp_path: Path
) -> None:
    source = Rejecting()
    env = {"FULCRUM_SYNC_DATABASE_URL": db_url, "FULCRUM_SYNC_LOG_FORMAT": "rich"}

    cli = Cli(env=env, today=D + timedelta(days=1), deps=Deps(source=source))

    assert cli("catalog", "load", str(acme_catalog(tmp_path / "acme.yaml"))).exit_code == 0
    scheduled = ("sync", "--grain", "day", "--catch-up", "--cache-load")
    assert cli(*scheduled, today=D - timedelta(days=3)).exit_code == 0  # all well up to D-4
    source.broken = True
    broken = cli(*scheduled)  # orders fails D-3..D on its channel series
    assert broken.exit_code == 1, broken.output
    engine = open_engine(db_url)
    with engine.begin() as conn:  # what a SIGTERM leaves: released pattern keys
        c = t.run_items.c
        released = (
            (c.kind == "pattern")
            & (c.metric_id == "new_revenue")
            & (c.period == D - timedelta(days=1))
        )
        conn.execute(
            update(t.run_items).where(released).values(status="released", lease_owner=None)
        )
    engine.dispose()

    status = cli("status", "--grain", "day", "--json")
    assert status.exit_code == 1, status.output
    problems = json.loads(status.stdout)["problems"]
    got = [(p["kind"], p["context"], p["command"], p["by_schedule"]) for p in problems]
    catch_up = "fulcrum-sync sync --grain day --catch-up --cache-load --tenant acme --metric orders"
    assert got == [
        ("behind", "acme::orders", catch_up, True),
        ("failing", "acme::orders", catch_up, True),
        (
            "patterns",
            "acme::new_revenue",
            f"fulcrum-sync patterns run --grain day --period {D - timedelta(days=1)} "
            "--tenant acme --metric new_revenue",
            True,
        ),
        (
            "cache",
            "acme::orders",
            "fulcrum-sync cache-load --grain day --tenant acme --metric orders",
            False,
        ),
    ]
    failing = problems[1]
    assert "channel failing since" in failing["detail"] and "orders.channel" in failing["detail"]
    assert "4 periods behind" in problems[0]["detail"]
    assert all(p["schedule_note"] for p in problems)
    text = cli("status", "--grain", "day", "--verbose")
    for command in {p["command"] for p in problems}:
        assert f"fix: {command}" in text.stdout  # on one line, to copy as it is
    headlines = cli("status", "--grain", "day")  # one headline per cause, no details
    assert headlines.exit_code == 1
    assert "1 day context failing since" in headlines.stdout
    assert "fix:" not in headlines.stdout

    source.broken = False
    for problem in problems:
        words = shlex.split(problem["command"])
        assert words[0] == "fulcrum-sync"
        fixed = cli(*words[1:])
        assert fixed.exit_code == 0, (problem["command"], fixed.output)
        left = json.loads(cli("status", "--grain", "day", "--json").stdout)["problems"]
        assert not [
            p for p in left if (p["kind"], p["context"]) == (problem["kind"], problem["context"])
        ]
    final = cli("status", "--grain", "day", "--json")
    assert final.exit_code == 0, final.output
    assert json.loads(final.stdout)["problems"] == []


def test_a_period_synced_without_rows_is_not_behind(sqlite_url: str, tmp_path: Path) -> None:
    source = Rejecting()
    source.no_rows_after = D - timedelta(days=1)  # Cube has nothing for D yet
    env = {"FULCRUM_SYNC_DATABASE_URL": sqlite_url, "FULCRUM_SYNC_TODAY": str(D + timedelta(1))}

    run = Cli(env=env, deps=Deps(source=source))

    assert run("catalog", "load", str(acme_catalog(tmp_path / "acme.yaml"))).exit_code == 0
    assert run("sync", "--grain", "day", "--no-patterns").exit_code == 0
    status = run("status", "--grain", "day", "--json")
    # The sync of D succeeded: up to date. Its patterns never ran (--no-patterns) and no
    # scheduled run will run them: that is a hole, the one thing a person must fix.
    assert status.exit_code == 1, status.output
    causes = {h["cause"] for h in json.loads(status.stdout)["headlines"]}
    assert causes == {"holes"}
    (fresh,) = json.loads(status.stdout)["freshness"]
    assert (fresh["up_to_date"], fresh["behind"]) == (2, [])
