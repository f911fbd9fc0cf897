"""Print backfill plans and results."""

from __future__ import annotations

import sys
from typing import Any

from fulcrum_sync.domain import BackfillPlan, BackfillResult, format_period
from fulcrum_sync.render.console import stderr_console, stdout_console
from fulcrum_sync.render.table import Column, print_fitted

PLAN_COLUMNS = (
    Column("grain"),
    Column("periods", "right"),
    Column("first"),
    Column("last"),
    Column("contexts", "right"),
    Column("sync keys", "right"),
    Column("pattern keys", "right", drop=2),
    Column("source queries (est.)", "right", drop=3),
)
RESULT_COLUMNS = (
    Column("grain"),
    Column("first"),
    Column("last"),
    Column("contexts", "right", drop=4),
    Column("keys done", "right"),
    Column("already done", "right"),
    Column("failed", "right"),
    Column("rows fetched", "right", drop=5),
    Column("rows in range", "right", drop=6),
    Column("fetch ratio", "right", drop=7),
    Column("source queries", "right", drop=8),
)


def plan_json(plan: BackfillPlan) -> dict[str, Any]:
    """A backfill plan as JSON-ready data."""
    periods = plan.periods
    return {
        "backfill_id": plan.backfill_id,
        "grain": plan.grain.value,
        "periods": len(periods),
        "first_period": format_period(plan.grain, periods[0]) if periods else None,
        "last_period": format_period(plan.grain, periods[-1]) if periods else None,
        "contexts": [str(c) for c in plan.contexts],
        "sync_keys": plan.sync_keys,
        "pattern_keys": plan.pattern_keys,
        "estimated_source_queries": plan.estimated_queries,
        "shard": f"{plan.shard[0]}/{plan.shard[1]}" if plan.shard else None,
    }


def print_plan(plan: BackfillPlan) -> None:
    """Print what a backfill would do (``--dry-run``)."""
    data = plan_json(plan)
    out = stdout_console()
    print_fitted(
        out,
        "backfill plan (dry run)",
        PLAN_COLUMNS,
        [
            (
                data["grain"],
                data["periods"],
                data["first_period"],
                data["last_period"],
                len(data["contexts"]),
                data["sync_keys"],
                data["pattern_keys"],
                data["estimated_source_queries"],
            )
        ],
        hidden="--json",
    )
    out.print("Contexts: " + ", ".join(data["contexts"]), markup=False)
    out.print("Dry run: nothing was written.")


def result_json(result: BackfillResult) -> dict[str, Any]:
    """A backfill's outcome as JSON-ready data."""
    ratio = result.rows_fetched / result.rows_in_range if result.rows_in_range else None
    return {
        **plan_json(result.plan),
        "run_id": result.run_id,
        "outcome": result.outcome,
        "halted": result.halted,
        "done": result.done,
        "failed": result.failed,
        "already_done": result.already_done,
        "busy": result.busy,
        "rows_fetched": result.rows_fetched,
        "rows_in_range": result.rows_in_range,
        "fetch_ratio": round(ratio, 4) if ratio is not None else None,
        "source_queries": result.source_queries,
        "failures": result.failures,
    }


def print_result(result: BackfillResult) -> None:
    """Print the backfill summary table and one plain closing line."""
    data = result_json(result)
    out = stdout_console()
    print_fitted(
        out,
        f"backfill {data['backfill_id']}",
        RESULT_COLUMNS,
        [
            (
                data["grain"],
                data["first_period"],
                data["last_period"],
                len(data["contexts"]),
                data["done"],
                data["already_done"],
                data["failed"],
                data["rows_fetched"],
                data["rows_in_range"],
                data["fetch_ratio"],
                data["source_queries"],
            )
        ],
        hidden="--json",
    )
    for failure in result.failures[:20]:
        out.print(f"failed: {failure}", markup=False)
    print_summary_line(result)


def summary_line(result: BackfillResult) -> str:
    """The one plain line that closes a backfill (CI logs end with it)."""
    data = result_json(result)
    return (
        f"backfill {data['backfill_id']} {data['outcome']}: {data['done']} done, "
        f"{data['already_done']} skipped (already done), {data['failed']} failed; rows fetched "
        f"{data['rows_fetched']} / in range {data['rows_in_range']} "
        f"(ratio {data['fetch_ratio']}); resume with --resume {data['backfill_id']}"
    )


def print_summary_line(result: BackfillResult) -> None:
    """Print the closing line on stdout after the table (people at a terminal)."""
    stdout_console().print(summary_line(result), markup=False)


def print_summary_to_stderr(result: BackfillResult) -> None:
    """Write the closing line, unwrapped, to stderr: in JSON log mode stdout holds JSON only."""
    sys.stderr.write(summary_line(result) + "\n")
    sys.stderr.flush()


def print_started(plan: BackfillPlan) -> None:
    """Tell the operator (on stderr) which backfill this is and how to resume it."""
    shard = f" shard {plan.shard[0]}/{plan.shard[1]}" if plan.shard else ""
    stderr_console().print(
        f"backfill {plan.backfill_id}{shard}: {len(plan.periods)} periods x "
        f"{len(plan.contexts)} contexts ({plan.sync_keys} sync keys, {plan.pattern_keys} "
        f"pattern keys); resume with --resume {plan.backfill_id}",
        markup=False,
    )
