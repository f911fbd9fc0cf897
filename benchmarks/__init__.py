"""Benchmarks of fulcrum-sync against floors measured in the same run (``benchmarks/run.py``).

Each module measures one thing and returns a :class:`benchmarks.common.Measurement`:

- ``orchestration``: the sync service's own cost per context, and peak RSS vs context count
- ``upsert``: the write path's throughput against a plain COPY / ``executemany`` floor
- ``concurrency``: contexts/s against a slow local Cube with 1 vs 8 workers
- ``backfill``: rows fetched from the source per row in a backfilled range
- ``cli_start``: ``fulcrum-sync --help`` wall time against ``python -c pass``
"""
