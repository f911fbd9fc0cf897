"""`sync --catch-up`: missed periods synced by the next run, bounded, with the cache chained.

The calendar moves with FULCRUM_SYNC_TODAY: a sync on D-4, no run on D-3..D-1, then the
scheduled command (`sync --grain day --catch-up --cache-load`) on D.
"""

from __future__ import annotations

import json
import shlex
from datetime import date, timedelta
from typing import Any

from cli_invoke import Cli, Ran
from sqlalchemy import Engine, func, select
from wrapped_source import WrappedSource

from fulcrum_sync.catalog import active_contexts, demo_catalog
from fulcrum_sync.domain import Grain, QueryRejectedError, SinkError
from fulcrum_sync.services.deps import Deps
from fulcrum_sync.services.jobs.keys import pattern_jobs
from fulcrum_sync.sinks.local import LocalSink, cache_table
from fulcrum_sync.sources.base import FetchRequest, SeriesRow
from fulcrum_sync.sources.demo import DemoSource
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import open_engine

D = date(2025, 8, 9)  # the last complete day when today is 2025-08-10
A_DAY = timedelta(days=1)  # today is the day after the last complete day
MISSED = [D - timedelta(days=n) for n in (3, 2, 1)]
SCHEDULED = ("sync", "--grain", "day", "--catch-up", "--cache-load", "--tenant", "acme")
ACME = {c.context.to_string(): c for c in active_contexts(demo_catalog(), Grain.DAY)}
ACME = {name: c for name, c in ACME.items() if name.startswith("acme::")}


def rows(url: str, query: Any) -> list[Any]:
    engine = open_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(query).all())
    finally:
        engine.dispose()


def test_a_missed_day_is_synced_by_the_next_run_and_a_second_run_does_nothing(
    cli: Cli,
    db_url: str,
) -> None:
    first = cli("sync", "--grain", "day", "--tenant", "acme", today=D - timedelta(days=4) + A_DAY)
    assert first.exit_code == 0, first.output

    result = cli(*SCHEDULED, "--json", today=D + A_DAY)
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)
    assert run["outcome"] == "succeeded" and run["beyond"] == []
    by_context = {c["context"]: c for c in run["contexts"]}
    assert set(by_context) == set(ACME)
    for name, c in by_context.items():
        assert c["periods"] == [p.isoformat() for p in [*MISSED, D]], name  # exactly these
        assert c["status"] == "succeeded" and c["window"] == f"{MISSED[0]}..{D}"
        assert 0 < c["rows_in_range"] <= c["rows_fetched"] <= 1.1 * c["rows_in_range"], name
        assert c["cache"]["status"] == "succeeded"  # loaded right after its sync

    c = t.run_items.c
    keys = rows(db_url, select(c.tenant, c.metric_id, c.period).where(c.kind == "sync"))
    for name in ACME:
        tenant, metric = name.split("::")
        synced = sorted(p for tt, m, p in keys if (tt, m) == (tenant, metric))
        assert synced == [D - timedelta(days=4), *MISSED, D]
    assert {s for (s,) in rows(db_url, select(c.status))} == {"succeeded"}
    p = t.pattern_results.c
    results = rows(db_url, select(p.metric_id, p.analysis_period, p.pattern, p.dimension))
    for name, ctx in ACME.items():
        for period in [*MISSED, D]:  # patterns per period, on data as of that period
            got = {
                (r.pattern, r.dimension)
                for r in results
                if (r.metric_id, r.analysis_period) == (ctx.metric.metric_id, period)
            }
            want = {(spec.name, dim or "none") for spec, dim, _ in pattern_jobs(ctx, period)}
            assert got == want, (name, period)
    for name, ctx in ACME.items():  # the cache holds what is stored
        table = cache_table(f"cache_{name.replace('::', '_')}_day")
        stored = sum(
            rows(
                db_url,
                select(func.count())
                .select_from(s)
                .where(s.c.metric_id == ctx.metric.metric_id, s.c.tenant_id == 1),
            )[0][0]
            for s in (t.metric_time_series, t.metric_dimensional_time_series)
        )
        assert rows(db_url, select(func.count()).select_from(table))[0][0] == stored

    again = cli(*SCHEDULED, "--json", today=D + A_DAY)
    assert again.exit_code == 0, again.output
    second = json.loads(again.stdout)
    assert [c["status"] for c in second["contexts"]] == ["skipped"] * len(ACME)
    assert sum(c["rows_fetched"] for c in second["contexts"]) == 0
    assert {c["cache"]["status"] for c in second["contexts"]} == {"unchanged"}
    worked = rows(
        db_url, select(func.count()).select_from(t.run_items).where(c.run_id == second["run_id"])
    )
    assert worked == [(0,)]  # no key was claimed


def test_beyond_the_bound_one_error_line_names_the_backfill_that_covers_the_rest(
    sqlite_cli: Cli,
) -> None:
    start = D - timedelta(days=10)
    assert (
        sqlite_cli(
            "sync",
            "--grain",
            "day",
            "--tenant",
            "acme",
            "--metric",
            "orders",
            "--no-patterns",
            today=start + A_DAY,
        ).exit_code
        == 0
    )
    args = ("sync", "--grain", "day", "--tenant", "acme", "--metric", "orders", "--no-patterns")
    result = sqlite_cli(
        "--log-format", "json", *args, "--catch-up", "--max-periods", "4", today=D + A_DAY
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    errors = [e for e in lines if e["level"] == "error"]
    assert [e["event"] for e in errors] == ["catch-up bound reached"]
    rest = f"--start {start + timedelta(days=5)} --end {D}"
    command = f"fulcrum-sync backfill --grain day {rest} --tenant acme --metric orders"
    assert errors[0]["command"] == command and command in errors[0]["error"]
    (summary,) = [e for e in lines if e["event"] == "sync finished"]
    caught = [(start + timedelta(days=n)).isoformat() for n in range(1, 5)]
    assert summary["caught_up"] == {"acme::orders": caught}  # the oldest four

    words = shlex.split(errors[0]["command"])
    done = sqlite_cli(*words[1:], "--no-patterns", today=D + A_DAY)  # the named command, as is
    assert done.exit_code == 0, done.output
    last = sqlite_cli(*args, "--catch-up", "--json", today=D + A_DAY)
    assert last.exit_code == 0 and json.loads(last.stdout)["contexts"][0]["status"] == "skipped"


def test_max_periods_is_refused_without_catch_up_or_beyond_the_full_lookback(
    sqlite_cli: Cli,
    sqlite_url: str,
) -> None:
    alone = sqlite_cli("sync", "--grain", "day", "--max-periods", "3", today=D + A_DAY)
    assert alone.exit_code == 2 and "--max-periods 3 needs --catch-up" in alone.stderr
    assert len(alone.stderr.strip().splitlines()) == 1
    over = sqlite_cli(
        "sync", "--grain", "day", "--catch-up", "--max-periods", "400", today=D + A_DAY
    )
    assert over.exit_code == 2, over.output
    assert "--max-periods 400 is more than the FULL lookback of 365 days" in over.stderr
    for table in (t.runs, t.contexts, t.tenants):  # refused before anything is written
        assert rows(sqlite_url, select(func.count()).select_from(table)) == [(0,)]


class FlakySink(LocalSink):
    """The local cache target, unreachable while ``down``."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.down = True

    def open(self) -> None:
        if self.down:
            raise SinkError("cannot connect to the cache target: connection refused")
        super().open()


def test_a_chained_load_that_failed_is_done_by_the_next_run(sqlite_url: str) -> None:
    engine = open_engine(sqlite_url)
    sink = FlakySink(engine)
    env = {"FULCRUM_SYNC_DATABASE_URL": sqlite_url, "FULCRUM_SYNC_TODAY": "2025-08-06"}

    cli = Cli(env=env)

    def scheduled() -> Ran:
        return cli(*SCHEDULED, "--json", deps=Deps(sink=sink))

    failed = scheduled()
    assert failed.exit_code == 1, failed.output  # the syncs committed, the loads did not
    run = json.loads(failed.stdout)
    assert {c["status"] for c in run["contexts"]} == {"succeeded"}
    assert {c["cache"]["status"] for c in run["contexts"]} == {"failed"}
    assert "connection refused" in run["failed"][0]["error"]
    status = cli("status", "--grain", "day", "--json")
    problems = [p for p in json.loads(status.stdout)["problems"] if p["context"] in ACME]
    assert [(p["kind"], p["by_schedule"]) for p in problems] == [("cache", True)] * len(ACME)
    assert {p["command"] for p in problems} == {
        f"fulcrum-sync cache-load --grain day --tenant acme --metric {name.split('::')[1]}"
        for name in ACME
    }

    sink.down = False
    retry = scheduled()
    assert retry.exit_code == 0, retry.output
    again = json.loads(retry.stdout)
    assert {c["status"] for c in again["contexts"]} == {"skipped"}  # nothing synced twice
    assert {c["cache"]["status"] for c in again["contexts"]} == {"succeeded"}
    status = cli("status", "--grain", "day", "--json")
    assert [p for p in json.loads(status.stdout)["problems"] if p["context"] in ACME] == []
    engine.dispose()


class RejectingRegion(WrappedSource):
    """The demo source, rejecting acme::new_revenue's region queries."""

    def __init__(self) -> None:
        super().__init__(DemoSource(42))

    def fetch_series(self, request: FetchRequest) -> list[SeriesRow]:
        dim = request.dimension.dimension_id if request.dimension else None
        if (request.metric.metric_id, dim) == ("new_revenue", "region"):
            raise QueryRejectedError("Cube rejected the query: unknown member orders.region")
        return self.inner.fetch_series(request)


def test_a_failed_dimension_skips_only_its_own_patterns_in_every_period(
    sqlite_cli: Cli, sqlite_url: str
) -> None:
    scope = ("--tenant", "acme", "--metric", "new_revenue")
    assert (
        sqlite_cli("sync", "--grain", "day", *scope, today=D - timedelta(days=2) + A_DAY).exit_code
        == 0
    )
    env = {"FULCRUM_SYNC_DATABASE_URL": sqlite_url, "FULCRUM_SYNC_TODAY": str(D + timedelta(1))}
    args = ["sync", "--grain", "day", *scope, "--catch-up", "--json"]
    result = Cli(env=env)(*args, deps=Deps(source=RejectingRegion()))
    assert result.exit_code == 1, result.output
    (ctx,) = json.loads(result.stdout)["contexts"]
    assert ctx["status"] == "partial" and ctx["periods"] == [str(D - timedelta(1)), str(D)]
    skipped = {
        (p["run_key"].split(":")[2], p["dimension"])
        for p in ctx["patterns"]
        if p["status"] == "skipped"
    }
    assert skipped == {(str(p), "region") for p in (D - timedelta(1), D)}
    assert all(
        p["error"] == "dimension sync failed" for p in ctx["patterns"] if p["dimension"] == "region"
    )
    p = t.pattern_results.c
    stored = rows(
        sqlite_url, select(p.analysis_period, p.dimension).where(p.pattern == "dimension_analysis")
    )
    for period in (D - timedelta(1), D):
        assert {d for a, d in stored if a == period} == {"channel", "plan"}  # not region
