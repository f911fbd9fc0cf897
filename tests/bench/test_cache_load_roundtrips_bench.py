"""``benchmarks/cache_load_roundtrips.py`` at a tiny size: the scheduled ``sync --cache-load``
sends a fixed number of round trips per destination (per context: 7 a table), every round
trip really waits the injected latency, and the old sink's replay counts 12 statements and
13 round trips a table."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.cache_load_roundtrips import measure  # noqa: E402

LATENCY = 0.02


def test_batched_per_context_and_old_sink_side_by_side(tmp_path: Path) -> None:
    out = measure(6, 2, LATENCY, 0, tmp_path)
    after, per_context, old = out["after"], out["per_context"], out["old_sink"]
    assert out["set_up_tables"] == after["tables"] == 6
    # tables exist: an INSERT OVERWRITE per table, plus the existence query, the stage and
    # batch table, PUT, COPY, BEGIN, COMMIT and the size query; login + 7 requests
    assert after["statements"] == 6 + 8
    assert after["round_trips"] == 8 and after["batches"] == 1
    assert after["tables_equal_state"] == 6
    assert per_context["tables"] == old["tables"] == 2
    assert per_context["statements_per_table"] == 9
    assert per_context["round_trips"] == 2 * 7 + 1 and per_context["batches"] == 2
    assert old["statements_per_table"] == 12 and old["round_trips"] == 2 * 13 + 1
    for variant in (after, per_context, old):  # the latency is slept, not added up
        assert variant["slept_s"] >= variant["round_trips"] * LATENCY * 0.99
        assert variant["load_wall_s"] >= (variant["round_trips"] - 1) * LATENCY
    assert per_context["load_wall_at_6_extrapolated_s"] > 0
