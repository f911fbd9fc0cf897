"""The sync's fetch planner (issue 26): a tenant's metrics sharing a cube share round trips.

Three metrics of one tenant on the ``orders`` cube, each with a base and two dimensions: one
/load request and three queries (each with the three measures) instead of nine requests;
every stored series equals what one query per series stores; a metric whose measure Cube
rejects fails alone; an older Cube that refuses multi requests still gets shared queries.
The run record and the summary carry ``source.requests`` and ``source.queries``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cli_invoke import Cli
from cube_server import SECRET, FakeCube
from pydantic import SecretStr
from test_cli_sync_cube import (
    TIME,
    cube_env,
    daily_data,
    load_catalog,
    stored,
    table_rows,
)
from wrapped_source import WrappedSource

from fulcrum_sync.services.deps import Deps
from fulcrum_sync.sources import CubeSource
from fulcrum_sync.store import runs
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import open_engine

MEASURES = {"revenue": "orders.total_amount", "orders": "orders.count", "refunds": "orders.refunds"}
DIMENSIONS = [("region", "orders.region"), ("channel", "orders.channel")]
CUBES = {
    "orders": {
        "measures": list(MEASURES.values()),
        "dimensions": [TIME, "orders.region", "orders.channel"],
    }
}
SYNC = ("sync", "--grain", "day", "--period", "2025-07-03", "--no-patterns", "--json")


class OneQueryEach(WrappedSource):
    """The Cube source as it was: one ``fetch_series`` per series (no ``fetch_many``)."""


@pytest.fixture
def cube() -> Iterator[Any]:
    clients: list[httpx.Client] = []

    def make(fake: FakeCube) -> CubeSource:
        client = httpx.Client(transport=fake.transport())
        clients.append(client)
        return CubeSource("http://cube.test", SecretStr(SECRET), client=client, sleep=lambda s: 0)

    yield make
    for client in clients:
        client.close()


def catalog(path: Path, measures: dict[str, str]) -> Path:
    metrics = [
        {
            "metric_id": metric_id,
            "measure": measure,
            "time_dimension": TIME,
            "dimensions": [{"dimension_id": d, "member": m} for d, m in DIMENSIONS],
            "grains": ["day"],
        }
        for metric_id, measure in measures.items()
    ]
    tenant = {"tenant_id": 7, "identifier": "acme", "metrics": metrics}
    path.write_text(yaml.safe_dump({"tenants": [tenant]}))
    return path


def synced(url: str, tmp_path: Path, source: Any, measures: dict[str, str]) -> Any:
    cli = Cli(env=cube_env(url, "http://cube.test"))
    load_catalog(cli, catalog(tmp_path / f"{abs(hash(url))}.yaml", measures))
    return cli(*SYNC, deps=Deps(source=source))


def test_three_metrics_sharing_a_cube_are_one_request_and_store_the_same_series(
    tmp_path: Path, cube: Any
) -> None:
    before, after = (f"sqlite:///{tmp_path / n}.db" for n in ("before", "after"))
    single, shared = FakeCube(daily_data, cubes=CUBES), FakeCube(daily_data, cubes=CUBES)
    old = synced(before, tmp_path, OneQueryEach(cube(single)), MEASURES)
    new = synced(after, tmp_path, cube(shared), MEASURES)
    assert old.exit_code == 0 and new.exit_code == 0, new.output
    assert (len(single.requests), single.queries) == (9, 9)
    assert (len(shared.requests), shared.queries) == (1, 3)
    [sent] = shared.requests
    assert all(sorted(q["measures"]) == sorted(MEASURES.values()) for q in sent.queries)
    base, dims = stored(after)
    assert (base, dims) == stored(before) and len(base) == 3 * 3 and len(dims) == 3 * 3 * 2 * 2
    [run] = table_rows(after, t.runs)
    assert run["summary"]["source"]["requests"] == 1 and run["summary"]["source"]["queries"] == 3
    summary = new.json()["source"]  # the --json summary says so too
    assert summary["requests"] == 1 and summary["queries"] == 3
    [run] = table_rows(before, t.runs)
    assert run["summary"]["source"]["requests"] == 9 and run["summary"]["source"]["queries"] == 9


def test_a_metric_cube_rejects_fails_alone_and_the_others_are_stored(
    tmp_path: Path, cube: Any
) -> None:
    url, reference = (f"sqlite:///{tmp_path / n}.db" for n in ("split", "reference"))
    broken = {**MEASURES, "broken": "orders.no_such_measure"}
    fake = FakeCube(daily_data, cubes=CUBES)
    result = synced(url, tmp_path, cube(fake), broken)
    assert result.exit_code == 1, result.output
    statuses = {r["run_key"].rsplit("::", 1)[1]: r["status"] for r in table_rows(url, t.run_items)}
    assert statuses == {"revenue": "succeeded", "orders": "succeeded", "refunds": "succeeded",
                        "broken": "failed"}  # fmt: skip
    errors = [r["error"] for r in table_rows(url, t.run_items) if r["status"] == "failed"]
    assert len(errors) == 1 and "no_such_measure" in errors[0]
    good = synced(reference, tmp_path, OneQueryEach(cube(FakeCube(daily_data))), MEASURES)
    assert good.exit_code == 0
    assert stored(url) == stored(reference)


def test_an_older_cube_gets_shared_queries_one_by_one(tmp_path: Path, cube: Any) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    fake = FakeCube(daily_data, cubes=CUBES)
    fake.refuse_multi = True
    result = synced(url, tmp_path, cube(fake), MEASURES)
    assert result.exit_code == 0, result.output
    assert [r.is_multi for r in fake.requests] == [True, False, False, False]
    assert fake.queries == 3  # the refused multi request ran none
    base, dims = stored(url)
    assert len(base) == 9 and len(dims) == 36


def test_a_context_another_process_holds_is_left_out_of_the_shared_fetch(
    tmp_path: Path, cube: Any
) -> None:
    url = f"sqlite:///{tmp_path / 'held.db'}"
    cli = Cli(env=cube_env(url, "http://cube.test"))
    load_catalog(cli, catalog(tmp_path / "held.yaml", MEASURES))
    key = "sync:day:2025-07-03:acme::refunds"
    engine = open_engine(url)
    try:
        item = runs.RunItem(key, "sync", "day", date(2025, 7, 3), "acme", "refunds")
        runs.ensure_items(engine, [item])
        other = "another-pod:1:abcdef12"  # a live lease of another host's process
        taken = runs.claim(engine, key, owner=other, run_id="other-run", lease_seconds=600)
        assert taken is runs.Claim.CLAIMED
    finally:
        engine.dispose()
    fake = FakeCube(daily_data, cubes=CUBES)
    result = cli(*SYNC, deps=Deps(source=cube(fake)))
    assert result.exit_code in (0, 1), result.output
    assert [r.is_multi for r in fake.requests] == [True]
    measures = {m for r in fake.requests for q in r.queries for m in q["measures"]}
    assert measures == {MEASURES["revenue"], MEASURES["orders"]}  # not the held one's
    statuses = {r["run_key"]: r["status"] for r in table_rows(url, t.run_items)}
    assert statuses[key] == "running"
    assert statuses["sync:day:2025-07-03:acme::revenue"] == "succeeded"
