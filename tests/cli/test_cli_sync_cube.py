"""`fulcrum-sync sync` and `status` end to end against a fake Cube 1.x, on SQLite and PostgreSQL.

The fake (tests/cube_server.py) is reached either as a real HTTP server named by
``FULCRUM_SYNC_CUBE_API_URL`` (the source the CLI builds from its settings), or in-process
through ``Deps(source=CubeSource(..., client=httpx.Client(transport=fake.transport())))``.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cli_invoke import Cli
from cube_server import SECRET, FakeCube, Reply, Rows, series_rows
from pydantic import SecretStr
from sqlalchemy import func, select

from fulcrum_sync.services.deps import Deps
from fulcrum_sync.sources import CubeSource
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import open_engine

MEASURE = "orders.total_amount"
TIME = "orders.created_at"
BAD_MEMBER = "orders.no_such_member"
CUBE_ERROR = "'no_such_member' not found for path 'orders.no_such_member'"
CUBES = {
    "orders": {
        "measures": [MEASURE, "orders.count"],
        "dimensions": [TIME, "orders.region", "orders.channel", "orders.sku"],
    }
}
SLICES = {"orders.region": ["east", "west"], "orders.channel": ["store", "web"]}


# --------------------------------------------------------------------------- helpers


def days(start: str, end: str) -> list[str]:
    """Every ISO day from ``start`` to ``end`` inclusive."""
    first, last = date.fromisoformat(start), date.fromisoformat(end)
    return [(first + timedelta(n)).isoformat() for n in range((last - first).days + 1)]


def window_days(query: dict[str, Any]) -> list[str]:
    start, end = query["timeDimensions"][0]["dateRange"]
    return days(start[:10], end[:10])


def daily_data(query: dict[str, Any], claims: dict[str, Any]) -> Rows:
    """Every day of the window; per dimension, every slice of SLICES (or of ``orders.sku``)."""
    member = (query.get("dimensions") or [None])[0]
    points: list[tuple[str, str | None, str | None]] = []
    for n, day in enumerate(window_days(query)):
        if member is None:
            points.append((day, f"{1000 + n}.00", None))
        else:
            for i, slice_ in enumerate(SLICES[member]):
                points.append((day, f"{100 * (i + 1) + n}.50", slice_))
    return series_rows(query, points)


def write_catalog(
    path: Path,
    dimensions: list[tuple[str, str]],
    metrics: tuple[str, ...] = ("revenue",),
    own_cubes: bool = False,
) -> Path:
    """Write a one-tenant catalog whose metrics each have ``dimensions`` (id, Cube member).

    ``own_cubes``: each metric's measure is in a cube of its own (``<metric>.revenue``), so
    the sync fetches each context alone instead of sharing one query (issue 26).
    """
    catalog = {
        "tenants": [
            {
                "tenant_id": 7,
                "identifier": "acme",
                "metrics": [
                    {
                        "metric_id": metric_id,
                        "measure": f"{metric_id}.revenue" if own_cubes else MEASURE,
                        "time_dimension": TIME,
                        "dimensions": [{"dimension_id": d, "member": m} for d, m in dimensions],
                        "grains": ["day"],
                    }
                    for metric_id in metrics
                ],
            }
        ]
    }
    path.write_text(yaml.safe_dump(catalog))
    return path


def cube_env(db_url: str, api_url: str, **extra: str) -> dict[str, str]:
    """Settings for the Cube source at ``api_url`` on the test database (fast retries)."""
    return {
        "FULCRUM_SYNC_DATABASE_URL": db_url,
        "FULCRUM_SYNC_SOURCE": "cube",
        "FULCRUM_SYNC_CUBE_API_URL": api_url,
        "FULCRUM_SYNC_CUBE_API_SECRET": SECRET,
        "FULCRUM_SYNC_CUBE_RETRIES": "0",
        "FULCRUM_SYNC_CUBE_TIMEOUT_SECONDS": "5",
        "FULCRUM_SYNC_LOG_FORMAT": "json",
        "FULCRUM_SYNC_WORKERS": "2",
        **extra,
    }


def load_catalog(cli: Cli, path: Path) -> None:
    loaded = cli("catalog", "load", str(path))
    assert loaded.exit_code == 0, loaded.output


@pytest.fixture
def in_process() -> Iterator[Callable[[FakeCube], Deps]]:
    """Build Deps whose source reaches ``fake`` in-process (clients closed afterwards)."""
    clients: list[httpx.Client] = []

    def make(fake: FakeCube) -> Deps:
        client = httpx.Client(transport=fake.transport())
        clients.append(client)
        secret = SecretStr(SECRET)
        source = CubeSource("http://cube.test", secret, client=client, sleep=lambda s: None)
        return Deps(source=source)

    yield make
    for client in clients:
        client.close()


def table_rows(url: str, table: Any) -> list[dict[str, Any]]:
    engine = open_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(table))]
    finally:
        engine.dispose()


def stored(url: str) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
    """Every stored base and dimension value: (metric, [dimension, slice,] date, value)."""
    base = {(r["metric_id"], r["date"], r["value"]) for r in table_rows(url, t.metric_time_series)}
    dims = {
        (r["metric_id"], r["dimension_name"], r["dimension_slice"], r["date"], r["value"])
        for r in table_rows(url, t.metric_dimensional_time_series)
    }
    return base, dims


def count(url: str, table: Any, **where: Any) -> int:
    engine = open_engine(url)
    try:
        query = select(func.count()).select_from(table)
        for column, value in where.items():
            query = query.where(table.c[column] == value)
        with engine.connect() as conn:
            return int(conn.execute(query).scalar_one())
    finally:
        engine.dispose()


def closed_port() -> int:
    """A local port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- a wrong member


@pytest.fixture
def served() -> Iterator[tuple[FakeCube, str]]:
    fake = FakeCube(daily_data, cubes=CUBES)
    with fake.serve() as url:
        yield fake, url


def test_wrong_member_fails_that_dimension_only_and_status_shows_it(
    db_url: str, tmp_path: Path, served: tuple[FakeCube, str]
) -> None:
    fake, url = served
    cli = Cli(env=cube_env(db_url, url))
    dims = [("region", "orders.region"), ("bogus", BAD_MEMBER), ("channel", "orders.channel")]
    load_catalog(cli, write_catalog(tmp_path / "catalog.yaml", dims))

    result = cli("sync", "--grain", "day", "--period", "2025-07-10", "--json", "--no-patterns")
    assert result.exit_code == 1, result.output
    summary = result.json()
    assert summary["outcome"] == "partial"
    [ctx] = summary["contexts"]
    assert ctx["context"] == "acme::revenue" and ctx["status"] == "partial"
    series = {s["dimension"]: s for s in ctx["series"]}
    assert set(series) == {None, "region", "bogus", "channel"}
    bogus = series.pop("bogus")
    assert bogus["success"] is False
    assert CUBE_ERROR in bogus["error"] and "HTTP 400" in bogus["error"]
    assert "bogus" in ctx["error"] and CUBE_ERROR in ctx["error"]
    assert all(s["success"] and s["sync_type"] == "FULL" for s in series.values())
    assert series[None]["rows_fetched"] == 10 and series[None]["inserted"] == 10
    assert series["region"]["inserted"] == series["channel"]["inserted"] == 20
    # The bad member did reach Cube (and was rejected there), the others were answered.
    sent = {tuple(q.get("dimensions", [])) for r in fake.requests for q in r.queries}
    assert sent == {(), ("orders.region",), (BAD_MEMBER,), ("orders.channel",)}

    assert count(db_url, t.metric_time_series, metric_id="revenue") == 10
    dim_table = t.metric_dimensional_time_series
    assert count(db_url, dim_table, dimension_name="region") == 20
    assert count(db_url, dim_table, dimension_name="channel") == 20
    assert count(db_url, dim_table, dimension_name="bogus") == 0
    statuses = {r["dimension"]: r for r in table_rows(db_url, t.metric_sync_status)}
    assert {k: r["status"] for k, r in statuses.items()} == {
        "": "succeeded",
        "region": "succeeded",
        "bogus": "failed",
        "channel": "succeeded",
    }
    assert CUBE_ERROR in statuses["bogus"]["error"]
    assert statuses["bogus"]["failing_since"] is not None
    assert statuses["bogus"]["last_success_at"] is None
    first_failure = statuses["bogus"]["failing_since"]

    # The next day fails again: "failing since" stays at the first failure.
    next_day = ("sync", "--grain", "day", "--period", "2025-07-11", "--no-patterns")
    again = cli("--log-format", "rich", *next_day)
    assert again.exit_code == 1, again.output
    assert "failed acme::revenue: bogus:" in again.stdout and CUBE_ERROR in again.stdout
    assert "partial" in again.stdout

    status = cli("status", "--grain", "day", "--json")
    assert status.exit_code == 1, status.output
    report = status.json()
    [failing] = report["failing_series"]
    assert (failing["tenant"], failing["metric_id"], failing["dimension"]) == (
        "acme",
        "revenue",
        "bogus",
    )
    assert CUBE_ERROR in failing["error"]
    assert failing["failing_since"] == first_failure.isoformat()
    assert failing["last_success_at"] is None
    assert [r["outcome"] for r in report["runs"]] == ["partial", "partial"]

    text = cli("status", "--grain", "day", "--verbose")
    assert text.exit_code == 1, text.output
    assert "Failing series" in text.stdout and "failing since" in text.stdout
    line = next(x for x in text.stdout.splitlines() if "bogus" in x)
    assert "acme::revenue" in line and first_failure.strftime("%Y-%m-%d") in line
    assert "no_such_member" in text.stdout

    # discover --check-source names the broken member before anyone waits for a sync.
    check = cli("discover", "--check-source", "--json")
    assert check.exit_code == 1, check.output
    assert check.json()["broken_metrics"] == {"acme::revenue": [BAD_MEMBER]}


def test_cube_error_text_with_brackets_is_shown_verbatim(
    db_url: str, tmp_path: Path, in_process: Callable[[FakeCube], Deps]
) -> None:
    """Cube's (Joi) messages carry brackets; the summary and status must not eat them."""
    message = 'Invalid query format: "dimensions[0]" [object Object] is not [allowed]'
    fake = FakeCube(daily_data, cubes=CUBES)
    base_query = {
        "measures": [MEASURE],
        "timeDimensions": [{"dimension": TIME, "granularity": "day"}],
    }
    base_rows = series_rows(base_query, [("2025-07-01", "1.00", None)])
    rejected = Reply(400, {"type": "UserError", "error": message})
    # The context's multi request is rejected, then its queries go alone: the base is
    # answered, the dimension rejected (issue 26: a rejected request is split).
    fake.script.extend([rejected, Reply(200, {"data": base_rows}), rejected])
    cli = Cli(env=cube_env(db_url, "http://cube.test"))
    load_catalog(cli, write_catalog(tmp_path / "c.yaml", [("region", "orders.region")]))
    args = ("sync", "--grain", "day", "--period", "2025-07-01", "--no-patterns")
    result = cli("--log-format", "rich", *args, deps=in_process(fake))
    assert result.exit_code == 1, result.output
    assert message in result.stdout
    status = cli("status", "--grain", "day", "--verbose")
    assert status.exit_code == 1
    assert "[object Object] is not" in status.stdout and "[allowed]" in status.stdout  # wrapped


# --------------------------------------------------------------------------- paging


def many_slices(query: dict[str, Any], claims: dict[str, Any]) -> Rows:
    """250 slices of ``orders.sku`` every day (25,000 rows over 100 days); one base row a day."""
    member = (query.get("dimensions") or [None])[0]
    points: list[tuple[str, str | None, str | None]] = []
    for n, day in enumerate(window_days(query)):
        if member is None:
            points.append((day, f"{n}.25", None))
        else:
            points.extend((day, f"{n + s / 1000:.3f}", f"sku-{s:03d}") for s in range(250))
    return series_rows(query, points)


def test_a_25000_row_dimensional_window_is_paged_and_stored_whole(
    db_url: str, tmp_path: Path, in_process: Callable[[FakeCube], Deps]
) -> None:
    fake = FakeCube(many_slices, cubes=CUBES)
    cli = Cli(env=cube_env(db_url, "http://cube.test"))
    load_catalog(cli, write_catalog(tmp_path / "c.yaml", [("sku", "orders.sku")]))
    # history starts 2025-07-01: a FULL window to 2025-10-08 is 100 days.
    deps = in_process(fake)
    args = ("sync", "--grain", "day", "--period", "2025-10-08", "--json", "--no-patterns")
    result = cli(*args, deps=deps)
    assert result.exit_code == 0, result.output
    [ctx] = result.json()["contexts"]
    sku = next(s for s in ctx["series"] if s["dimension"] == "sku")
    assert sku["rows_fetched"] == sku["inserted"] == 25_000

    pages = [q for r in fake.requests for q in r.queries if q.get("dimensions") == ["orders.sku"]]
    held = len(many_slices(pages[0], {}))
    assert held == 25_000
    stored = count(db_url, t.metric_dimensional_time_series, dimension_name="sku")
    assert stored == held
    assert [(q["limit"], q["offset"]) for q in pages] == [
        (10_000, 0),
        (10_000, 10_000),
        (10_000, 20_000),
    ]
    assert all(q["order"] for q in pages)
    assert count(db_url, t.metric_time_series) == 100


# --------------------------------------------------------------------------- missing periods


def gappy(query: dict[str, Any], claims: dict[str, Any]) -> Rows:
    """Cube leaves out days without data: no base row on 07-03 and 07-06; 07-04 is a real 0."""
    member = (query.get("dimensions") or [None])[0]
    points: list[tuple[str, str | None, str | None]] = []
    for day in window_days(query):
        if member is None:
            if day in ("2025-07-03", "2025-07-06"):
                continue
            points.append((day, "0.00" if day == "2025-07-04" else "12.50", None))
        else:
            points.append((day, "5.00", "east"))
            if day != "2025-07-05":  # "west" has no data that day
                points.append((day, "7.00", "west"))
    return series_rows(query, points)


def test_periods_missing_from_cubes_answer_are_stored_as_missing(
    db_url: str, tmp_path: Path, in_process: Callable[[FakeCube], Deps]
) -> None:
    fake = FakeCube(gappy, cubes=CUBES)
    cli = Cli(env=cube_env(db_url, "http://cube.test"))
    load_catalog(cli, write_catalog(tmp_path / "c.yaml", [("region", "orders.region")]))
    deps = in_process(fake)
    args = ("sync", "--grain", "day", "--period", "2025-07-07", "--json", "--no-patterns")
    result = cli(*args, deps=deps)
    assert result.exit_code == 0, result.output
    [ctx] = result.json()["contexts"]
    base = next(s for s in ctx["series"] if s["dimension"] is None)
    assert base["rows_fetched"] == base["inserted"] == 5
    assert ctx["rows_skipped"] == 0  # nothing missing was "skipped": it never came

    stored = {r["date"].isoformat(): r["value"] for r in table_rows(db_url, t.metric_time_series)}
    assert stored == {
        "2025-07-01": 12.5,
        "2025-07-02": 12.5,
        "2025-07-04": 0.0,  # a zero Cube sent stays a zero
        "2025-07-05": 12.5,
        "2025-07-07": 12.5,
    }
    dims = table_rows(db_url, t.metric_dimensional_time_series)
    west = {r["date"].isoformat() for r in dims if r["dimension_slice"] == "west"}
    east = {r["date"].isoformat() for r in dims if r["dimension_slice"] == "east"}
    assert len(east) == 7 and west == east - {"2025-07-05"}
    assert all(r["value"] != 0 for r in dims)


# --------------------------------------------------------------------------- unreachable


def test_unreachable_source_fails_every_context_with_exit_3(db_url: str, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    cli = Cli(
        env=cube_env(
            db_url,
            url,
            FULCRUM_SYNC_CUBE_RETRIES="1",
            FULCRUM_SYNC_CUBE_TIMEOUT_SECONDS="0.5",
            FULCRUM_SYNC_WORKERS="4",
        )
    )
    catalog = write_catalog(
        tmp_path / "c.yaml", [("region", "orders.region")], metrics=("revenue", "orders")
    )
    load_catalog(cli, catalog)

    args = ("sync", "--grain", "day", "--period", "2025-07-03", "--no-patterns")
    result = cli(*args, "--json")
    assert result.exit_code == 3, result.output
    summary = result.json()
    assert summary["outcome"] == "failed"
    contexts = {c["context"]: c for c in summary["contexts"]}
    assert set(contexts) == {"acme::revenue", "acme::orders"}
    for ctx in contexts.values():
        assert ctx["status"] == "failed"
        error = ctx["error"]
        # both metrics share a cube: fetched together, the error names the shared fetch
        assert error.startswith(f"Cube at {url}: acme::orders, revenue (day, ")
        assert "failed after 2 attempts" in error and "connection failed" in error
        assert "\n" not in error and "Traceback" not in error
        assert all(not s["success"] for s in ctx["series"])
    assert count(db_url, t.metric_time_series) == 0
    assert count(db_url, t.metric_sync_status, status="failed") == 4
    [run] = table_rows(db_url, t.runs)
    assert run["outcome"] == "failed"

    # The table summary, with no retries at all: one line per failed context. A refused
    # connection would fail in a millisecond, often before the second worker has picked its
    # context, which is then released (issue 15), not failed; a Cube that drops connections
    # after 0.3 s keeps both contexts in flight.
    dropping = FakeCube()
    dropping.script.extend([Reply(delay=0.3, raise_exc=httpx.ConnectError)] * 8)
    with dropping.serve() as dropping_url:
        no_retries = {"FULCRUM_SYNC_CUBE_RETRIES": "0", "FULCRUM_SYNC_CUBE_API_URL": dropping_url}
        text = cli("--log-format", "rich", *args, env=no_retries)
    assert text.exit_code == 3, text.output
    failed_lines = [x for x in text.stdout.splitlines() if x.startswith("failed ")]
    assert sorted(x.split(": ")[0] for x in failed_lines) == [
        "failed acme::orders",
        "failed acme::revenue",
    ]
    flat = " ".join(text.stdout.splitlines())  # a long error wraps at the terminal's width
    assert flat.count("failed after 1 attempt;") >= 2  # each context (+ the halt: one fetch)
    assert "Run " in text.stdout and ": failed (2 failed)" in text.stdout
    assert "Traceback" not in text.output
