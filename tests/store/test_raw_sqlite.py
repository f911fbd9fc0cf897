"""store/raw_sqlite.py stores on SQLite's cursor exactly what SQLAlchemy's execution would."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert

from fulcrum_sync.store import raw_sqlite
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import open_engine
from fulcrum_sync.store.runs import _COMPLETE
from fulcrum_sync.store.sync_status import _forward_upsert
from fulcrum_sync.store.versions import _bump

NOW = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def _status(dimension: str, period: date, **changes: Any) -> dict[str, Any]:
    row = {c.name: None for c in t.metric_sync_status.columns}
    row.update(
        tenant_id=1,
        metric_id="revenue",
        grain="day",
        dimension=dimension,
        status="succeeded",
        sync_type="INCREMENTAL",
        period=period,
        window_start=date(2025, 9, 1),
        window_end=period,
        definition_hash="abc",
        last_success_at=NOW,
        last_attempt_at=NOW,
        rows_fetched=3,
        rows_stored=2,
        rows_skipped=1,
        window_digest="739587;739498:3a8f",
    )
    return {**row, **changes}


def _writes(engine: Engine, run: Any) -> list[int]:
    """The three statements of a context's transaction, each run by ``run``; their counts."""
    key = {"tenant": "t", "metric_id": "revenue", "grain": "day", "period": date(2026, 1, 1)}
    with engine.begin() as conn:
        conn.execute(
            insert(t.run_items),
            [
                {**key, "run_key": k, "kind": "sync", "status": "running", "lease_owner": "me"}
                | {"created_at": NOW, "lease_expires_at": NOW}
                for k in ("a", "b")
            ],
        )
    version = {"tenant_id": 1, "metric_id": "revenue", "grain": "day", "version": 1}
    version["changed_at"] = NOW
    complete = {"now": NOW, "p_owner": "me", "p_status": "succeeded", "p_error": None}
    with engine.begin() as conn:
        return [
            run(conn, _forward_upsert("sqlite"), [_status("", date(2026, 1, 1))]),
            run(  # a newer period, then an older one the forward-only upsert leaves alone
                conn,
                _forward_upsert("sqlite"),
                [
                    _status("region", date(2026, 1, 2), error="boom", failing_since=NOW),
                    _status("region", date(2025, 12, 1), status="failed"),
                ],
            ),
            run(conn, _COMPLETE, [{**complete, "key": "a", "p_counts": {"rows": 2}}]),
            run(conn, _COMPLETE, [{**complete, "key": "b", "p_counts": None}]),
            run(conn, _COMPLETE, [{**complete, "key": "b", "p_counts": None}]),  # done: 0
            run(conn, _bump("sqlite"), [version, version]),
        ]


def _tables(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    with sqlite3.connect(path) as db:
        return {
            name: sorted(db.execute(f"SELECT * FROM {name}").fetchall())
            for name in ("metric_sync_status", "run_items", "series_versions")
        }


def test_raw_statements_store_what_sqlalchemy_stores(tmp_path: Path) -> None:
    def through_sqlalchemy(conn: Any, stmt: Any, rows: list[dict[str, Any]]) -> int:
        return int(conn.execute(stmt, rows).rowcount)

    counts = {}
    for name, run in (("raw", raw_sqlite.execute), ("sqlalchemy", through_sqlalchemy)):
        engine = open_engine(f"sqlite:///{tmp_path / name}.db")
        try:
            counts[name] = _writes(engine, run)
        finally:
            engine.dispose()
    assert counts["raw"] == counts["sqlalchemy"] == [1, 1, 1, 1, 0, 2]
    raw, expected = _tables(tmp_path / "raw.db"), _tables(tmp_path / "sqlalchemy.db")
    assert raw == expected
    assert [r[4] for r in raw["metric_sync_status"]] == ["succeeded", "succeeded"]
    assert raw["series_versions"][0][3] == 2  # bumped twice


def test_a_statement_with_defaults_to_compute_goes_through_sqlalchemy(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'state.db'}")
    row = {"run_key": "a", "kind": "sync", "grain": "day", "period": date(2026, 1, 1)}
    row |= {"tenant": "t", "metric_id": "m", "status": "pending", "created_at": NOW}
    try:
        with engine.begin() as conn:
            stmt = insert(t.run_items)  # "pattern" and "attempts" take their defaults
            assert raw_sqlite._plan(stmt, conn.dialect, tuple(sorted(row))) is None
            assert raw_sqlite.execute(conn, stmt, [row]) == 1
    finally:
        engine.dispose()
    with sqlite3.connect(tmp_path / "state.db") as db:
        assert db.execute("SELECT pattern, attempts FROM run_items").fetchall() == [("", 0)]
