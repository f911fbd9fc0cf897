"""Orchestration overhead: what ``sync`` itself costs per context, and its memory.

The service runs as a job in JSON log mode does (``keep_contexts=False``: each context
reported as it ends, only the failed ones kept).

The source answers at once with no rows, so nothing is fetched and no series row is
written: what remains is the service's own work per context (claim the run key, read the
sync status, decide FULL or INCREMENTAL, record the series status, complete the key) on a
real SQLite state database. Every run happens in a child process so its peak RSS is its
own. Two floors come from the same run: the run-key bookkeeping alone (claim + complete
through ``store/runs.py``) and the same two transactions as raw SQL on the driver.

Each child is :mod:`benchmarks.orchestration_child`; run one by hand:
``python -m benchmarks.orchestration_child sync URL N``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from benchmarks.catalogs import prepare_state, synthetic_catalog
from benchmarks.common import Figure, Measurement, Progress, Sizes, pct, run_child
from benchmarks.databases import pg_admin_url, pg_database, pg_schema, pg_version, sqlite_url

TARGET_MS = 0.5  # issue 19 (was 1 ms)
TARGET_RSS_MB = 300.0
RSS_GROWTH_LIMIT = 1.25  # peak RSS at the big size at most this times the small size's


def measure(sizes: Sizes, progress: Progress) -> Measurement:
    """Run every orchestration child and turn their answers into figures."""
    m = Measurement("orchestration", "Orchestration overhead (sync, instant source, SQLite)")
    small, big = sizes.rss_contexts
    main_n = sizes.orchestration_contexts
    with tempfile.TemporaryDirectory(prefix="fulcrum-bench-") as tmp:
        root = Path(tmp)

        def prepared(name: str, contexts: int) -> str:
            url = sqlite_url(root, f"{name}.db")
            prepare_state(url, synthetic_catalog(contexts))
            return url

        progress(f"orchestration: sync over {main_n} contexts (child process)")
        main = run_child("orchestration_child", ["sync", prepared("main", main_n), str(main_n)])
        runs_by_size = {main_n: main}
        for n in (small, big):
            if n not in runs_by_size:
                progress(f"orchestration: peak RSS at {n} contexts (child process)")
                runs_by_size[n] = run_child(
                    "orchestration_child", ["sync", prepared(f"rss{n}", n), str(n)]
                )
        progress("orchestration: baseline process (imports, engine, no contexts)")
        baseline = run_child("orchestration_child", ["sync", prepared("base", 1), "0"])
        progress(f"orchestration: claim + complete floor over {sizes.floor_keys} keys")
        floor = run_child(
            "orchestration_child", ["floor", sqlite_url(root, "floor.db"), str(sizes.floor_keys)]
        )
        pg = _postgres_runs(sizes.pg_orchestration_contexts, progress)
        progress(f"orchestration: profile of {sizes.profile_contexts} contexts")
        prof_url = prepared("profile", sizes.profile_contexts)
        profile = run_child(
            "orchestration_child", ["sync", prof_url, str(sizes.profile_contexts), "--profile"]
        )

    full, incr = main.output["full"], main.output["incremental"]
    fl = floor.output
    rss_small, rss_big = runs_by_size[small].max_rss_mb, runs_by_size[big].max_rss_mb
    growth = rss_big / rss_small if rss_small else None
    m.add(
        Figure(
            "incremental_ms_per_context",
            f"sync, INCREMENTAL, {main_n} contexts (wall)",
            incr["ms_per_context"],
            "ms",
            "<",
            TARGET_MS,
            f"cpu {incr['cpu_ms_per_context']:.2f} ms/context",
        ),
        Figure(
            "full_ms_per_context",
            f"sync, first run (FULL), {main_n} contexts (wall)",
            full["ms_per_context"],
            "ms",
            "<",
            TARGET_MS,
            f"cpu {full['cpu_ms_per_context']:.2f} ms/context",
        ),
        Figure(
            "bookkeeping_ms_per_key",
            "floor: claim + complete alone (store/runs.py)",
            fl["store_ms_per_key"],
            "ms",
            note=f"cpu {fl['store_cpu_ms_per_key']:.2f} ms/key",
        ),
        Figure(
            "raw_sql_ms_per_key",
            "floor: same two transactions as raw driver SQL",
            fl["raw_ms_per_key"],
            "ms",
            note=f"cpu {fl['raw_cpu_ms_per_key']:.2f} ms/key",
        ),
        Figure(
            "bookkeeping_share",
            "claim + complete floor / INCREMENTAL per context",
            pct(fl["store_ms_per_key"], incr["ms_per_context"]),
            "%",
        ),
        Figure(
            "statements_per_context",
            "SQL statements per context (INCREMENTAL)",
            incr["statements_per_context"],
            "",
            note=f"{incr['commits_per_context']:.1f} commits; "
            f"{incr['sql_ms_per_context']:.2f} ms/context inside the driver",
        ),
        Figure(
            f"peak_rss_{small}", f"peak RSS, {small} contexts", rss_small, "MB", "<", TARGET_RSS_MB
        ),
        Figure(f"peak_rss_{big}", f"peak RSS, {big} contexts", rss_big, "MB", "<", TARGET_RSS_MB),
        Figure(
            "rss_growth",
            f"peak RSS {big} / {small} contexts",
            growth,
            "x",
            "<=",
            RSS_GROWTH_LIMIT,
            f"baseline process {baseline.max_rss_mb:.0f} MB; "
            f"{(rss_big - rss_small) / max(big - small, 1) * 1000:.1f} MB per 1k contexts",
        ),
    )
    split = (profile.output.get("profile") or {}).get("phases_pct", {})
    layers = (profile.output.get("profile") or {}).get("layers_pct", {})
    if split:
        others = ", ".join(f"{k} {v:.0f}%" for k, v in split.items() if k != "claim run key")
        building = layers.get("sqlalchemy.sql (building statements, cache keys)", 0.0)
        m.add(
            Figure(
                "profile_bookkeeping_pct",
                f"profile ({sizes.profile_contexts} contexts): claim share",
                split.get("claim run key", 0.0),
                "%",
                note=f"{others}; SQLAlchemy statement building {building:.0f}% of own time",
            )
        )
    for kind, label in (
        ("pooled", "PostgreSQL, pooled engine (as sync opens it)"),
        ("nullpool", "PostgreSQL without a pool (NullPool: a connection per transaction)"),
    ):
        if kind in pg:
            run = pg[kind]["incremental"]
            m.add(
                Figure(
                    f"pg_{kind}_ms_per_context",
                    f"{label}, INCREMENTAL, {pg['contexts']} contexts",
                    run["ms_per_context"],
                    "ms",
                    note=f"cpu {run['cpu_ms_per_context']:.2f} ms/context; "
                    f"{run['commits_per_context']:.1f} commits/context",
                )
            )
    m.details = {
        "contexts": main_n,
        "store": "sqlite",
        "source": "instant (0 rows)",
        "runs": main.output,
        "rss_mb": {str(n): round(r.max_rss_mb, 1) for n, r in sorted(runs_by_size.items())}
        | {"0": round(baseline.max_rss_mb, 1)},
        "floor": fl,
        "profile": profile.output.get("profile"),
        "postgresql": pg,
    }
    return m


def _postgres_runs(contexts: int, progress: Progress) -> dict[str, Any]:
    """The same runs on PostgreSQL, with the engine the CLI opens and with a pool."""
    admin = pg_admin_url()
    if pg_version(admin) is None:
        return {"skipped": f"PostgreSQL not reachable at {admin}"}
    out: dict[str, Any] = {"contexts": contexts}
    with pg_database(admin) as db:
        for kind, pooled in (("pooled", True), ("nullpool", False)):
            progress(f"orchestration: PostgreSQL, {contexts} contexts, {kind}")
            url = pg_schema(db)
            prepare_state(url, synthetic_catalog(contexts))
            child = run_child(
                "orchestration_child",
                ["sync", url, str(contexts), *([] if pooled else ["--no-pool"])],
            )
            out[kind] = child.output
    return out
