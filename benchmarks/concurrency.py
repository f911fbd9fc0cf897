"""Source concurrency: contexts/s against a slow local Cube with 1 vs 8 workers.

A fake Cube 1.x server (``FakeCube`` of ``tests/cube_server.py`` behind a small HTTP
handler) runs in a process of its own on 127.0.0.1 and answers every ``/load`` after a
fixed delay (50 ms). Each context has a base series and one dimension, so a context costs
at least two round trips. Measured through the real sync service (``services.sync.run``
with the engine and Cube source ``Deps`` builds for the ``sync`` command) on PostgreSQL,
where workers write concurrently. The same on SQLite (whose single writer serializes the
stores) and the Cube client alone, with no store, are reported alongside.

Serve the fake by hand: ``python -m benchmarks.concurrency serve --delay 0.05``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from benchmarks.catalogs import prepare_state, settings, synthetic_catalog
from benchmarks.common import ROOT, Figure, Measurement, Progress, Sizes
from benchmarks.databases import pg_admin_url, pg_database, pg_schema, pg_version, sqlite_url

TARGET_SPEEDUP = 6.0
WORKERS = (1, 8)
PERIOD = date(2025, 9, 1)
DIMENSIONS = 1
DAYS_ANSWERED = 28  # the fake answers the window's last four weeks
SLICES = ("a", "b", "c")


def measure(sizes: Sizes, progress: Progress) -> Measurement:
    """Run the sync service and the bare client with 1 and 8 workers against the fake."""
    delay = sizes.concurrency_delay
    m = Measurement(
        "concurrency", f"Source concurrency, Cube answering after {delay * 1000:.0f} ms"
    )
    n1, n8 = sizes.concurrency_contexts
    ideal = WORKERS[1] / WORKERS[0]
    admin = pg_admin_url()
    headline = "postgresql" if pg_version(admin) is not None else "sqlite"
    with serve_fake_cube(delay) as cube_url:
        rates: dict[str, dict[int, float]] = {}
        if headline == "postgresql":
            with pg_database(admin) as db:
                rates["postgresql"] = {}
                for workers, n in zip(WORKERS, (n1, n8), strict=True):
                    progress(f"concurrency: sync on PostgreSQL, {n} contexts, --workers {workers}")
                    rates["postgresql"][workers] = _sync_rate(pg_schema(db), cube_url, n, workers)
        with tempfile.TemporaryDirectory(prefix="fulcrum-bench-") as tmp:
            rates["sqlite"] = {}
            for workers, n in zip(WORKERS, (n1, n8), strict=True):
                progress(f"concurrency: sync on SQLite, {n} contexts, --workers {workers}")
                url = sqlite_url(Path(tmp), f"w{workers}.db")
                rates["sqlite"][workers] = _sync_rate(url, cube_url, n, workers)
        rates["source_only"] = {}
        s1, s8 = sizes.concurrency_source_only
        for workers, n in zip(WORKERS, (s1, s8), strict=True):
            progress(f"concurrency: Cube client alone, {n} contexts, {workers} threads")
            rates["source_only"][workers] = _source_rate(cube_url, n, workers)

    def speedup(kind: str) -> float | None:
        r = rates.get(kind)
        return r[WORKERS[1]] / r[WORKERS[0]] if r else None

    bound = 1 / (delay * (1 + DIMENSIONS))  # contexts/s of one worker if only the delay counted
    for kind, label, target in (
        ("postgresql", "sync on PostgreSQL", headline == "postgresql"),
        ("sqlite", "sync on SQLite", headline == "sqlite"),
        ("source_only", "Cube client alone (no store)", False),
    ):
        if kind not in rates:
            if kind == "postgresql":
                m.add(Figure(f"{kind}_speedup", f"{label}: PostgreSQL not reachable", None, "x"))
            continue
        r = rates[kind]
        m.add(
            Figure(
                f"{kind}_speedup",
                f"{label}: --workers 8 / --workers 1",
                speedup(kind),
                "x",
                ">=" if target else None,
                TARGET_SPEEDUP if target else None,
                f"{r[1]:.1f} → {r[8]:.1f} contexts/s",
            )
        )
    m.details = {
        "delay_seconds": delay,
        "queries_per_context": 1 + DIMENSIONS,
        "contexts": {"workers_1": n1, "workers_8": n8},
        "contexts_per_second": {
            k: {str(w): round(v, 2) for w, v in r.items()} for k, r in rates.items()
        },
        "delay_bound_contexts_per_second": {
            "1": round(bound, 2),
            "8": round(bound * WORKERS[1], 2),
        },
        "ideal_speedup": ideal,
        "headline_store": headline,
    }
    return m


def _cube_settings(database_url: str, cube_url: str, workers: int) -> Any:
    from cube_server import SECRET  # type: ignore[import-not-found]

    return settings(
        database_url,
        source="cube",
        cube_api_url=cube_url,
        cube_api_secret=SECRET,
        workers=workers,
        cube_retries=0,
    )


def _sync_rate(database_url: str, cube_url: str, contexts: int, workers: int) -> float:
    """Contexts/s of one ``sync`` of ``contexts`` fresh contexts (all FULL).

    The engine and the source come from ``Deps`` as the ``sync`` command gets them.
    """
    from fulcrum_sync.domain import Grain, SyncRequest
    from fulcrum_sync.services.deps import Deps
    from fulcrum_sync.services.run import sync as sync_service

    _tests_on_path()
    prepare_state(database_url, synthetic_catalog(contexts, dimensions=DIMENSIONS))
    cfg = _cube_settings(database_url, cube_url, workers)
    deps = Deps(settings=cfg)
    try:
        deps.get_engine(workers=workers, pooled=True)
        deps.get_source()
        request = SyncRequest(grain=Grain.DAY, period=PERIOD, workers=workers, run_patterns=False)
        start = time.perf_counter()
        result = sync_service.run(request, deps)
        seconds = time.perf_counter() - start
    finally:
        deps.close()
    bad = [c for c in result.contexts if c.status != "succeeded"]
    if bad or len(result.contexts) != contexts:
        raise RuntimeError(
            f"sync: {len(bad)} contexts failed, first: {bad[0].error if bad else ''}"
        )
    return contexts / seconds


def _source_rate(cube_url: str, contexts: int, workers: int) -> float:
    """Contexts/s of the Cube client alone: each context's base and dimension queries."""
    from fulcrum_sync.catalog import active_contexts
    from fulcrum_sync.domain import SyncType, Window, compute_window
    from fulcrum_sync.sources import FetchRequest, build_source

    _tests_on_path()
    cfg = _cube_settings("sqlite://", cube_url, workers)
    source = build_source(cfg)
    defs = active_contexts(synthetic_catalog(contexts, dimensions=DIMENSIONS))
    window: Window = compute_window(
        defs[0].grain, PERIOD, SyncType.FULL, cfg.history_start, cfg.lookback
    )
    requests = [
        FetchRequest(c.tenant.tenant_id, c.tenant.identifier, c.metric, c.grain, window, dim)
        for c in defs
        for dim in (None, *c.metric.dimensions)
    ]
    try:
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            rows = sum(len(r) for r in pool.map(source.fetch_series, requests))
        seconds = time.perf_counter() - start
    finally:
        source.close()
    if rows == 0:
        raise RuntimeError("the fake Cube answered no rows")
    return contexts / seconds


# --------------------------------------------------------------------------- the fake Cube


def _tests_on_path() -> None:
    tests = str(ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)


@contextmanager
def serve_fake_cube(delay: float) -> Iterator[str]:
    """Start the fake Cube in a child process; yield its base URL; stop it afterwards."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.concurrency", "serve", "--delay", str(delay)],
        stdout=subprocess.PIPE,
        stdin=subprocess.PIPE,
        env=env,
        cwd=str(ROOT),
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http://"):
            raise RuntimeError(f"the fake Cube did not start (said {url!r})")
        yield url
    finally:
        if proc.stdin is not None:
            proc.stdin.close()  # the server stops when its stdin closes
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _answer(query: dict[str, Any], _claims: dict[str, Any]) -> list[dict[str, Any]]:
    from cube_server import series_rows

    end = date.fromisoformat(query["timeDimensions"][0]["dateRange"][1])
    days = [(end - timedelta(days=i)).isoformat() for i in range(DAYS_ANSWERED - 1, -1, -1)]
    if query.get("dimensions"):
        points = [(d, f"{100 + i}.00", s) for i, d in enumerate(days) for s in SLICES]
    else:
        points = [(d, f"{300 + i}.00", None) for i, d in enumerate(days)]
    return series_rows(query, points)


def _serve(delay: float) -> None:
    """Serve ``FakeCube`` answers on 127.0.0.1, each ``/load`` after ``delay`` seconds.

    The handler writes headers and body in one send with Nagle off, as Node (and so Cube)
    does: two small writes with Nagle on cost a delayed ACK (~40 ms) per keep-alive request.
    """
    _tests_on_path()
    from cube_server import FakeCube

    fake = FakeCube(_answer)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            reply = fake.handle(self.command, self.path, headers, raw)
            fake.requests.clear()  # keep memory flat
            if self.path.endswith("/v1/load"):
                time.sleep(delay)
            payload = reply.body()
            head = (
                f"HTTP/1.1 {reply.status} {HTTPStatus(reply.status).phrase}\r\n"
                "Content-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\n\r\n"
            )
            self.wfile.write(head.encode() + payload)

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    server.shutdown()
    server.server_close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.concurrency")
    sub = parser.add_subparsers(dest="mode", required=True)
    serve = sub.add_parser("serve", help="serve the slow fake Cube until stdin closes")
    serve.add_argument("--delay", type=float, default=0.05)
    args = parser.parse_args(argv)
    _serve(args.delay)


if __name__ == "__main__":
    main()
