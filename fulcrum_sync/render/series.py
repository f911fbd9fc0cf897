"""Print stored values: a sparkline per series and a table on a terminal; CSV or JSON."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterable
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

from fulcrum_sync.domain import SeriesValues
from fulcrum_sync.render.console import stdout_console
from fulcrum_sync.render.numbers import format_number, format_value, sparkline
from fulcrum_sync.render.table import Column, print_fitted


def series_json(values: SeriesValues) -> dict[str, Any]:
    """The values as JSON-ready data: one object per row (``slice`` only for a dimension)."""
    req = values.request
    dimensional = req.dimension is not None
    return {
        "context": f"{req.tenant}::{req.metric}",
        "grain": req.grain.value,
        "dimension": req.dimension,
        "rows": [
            {"date": d.isoformat(), **({"slice": s} if dimensional else {}), "value": v}
            for d, s, v in values.rows
        ],
    }


def write_csv(values: SeriesValues) -> None:
    """Write ``date,value`` (or ``date,dimension,slice,value``) rows to stdout, full precision."""
    writer = csv.writer(sys.stdout, lineterminator="\n")
    dimension = values.request.dimension
    if dimension is None:
        writer.writerow(["date", "value"])
        writer.writerows((d.isoformat(), repr(v)) for d, _, v in values.rows)
    else:
        writer.writerow(["date", "dimension", "slice", "value"])
        writer.writerows((d.isoformat(), dimension, s, repr(v)) for d, s, v in values.rows)
    sys.stdout.flush()


def print_series(values: SeriesValues) -> None:
    """Print a sparkline per series, then the values (slices side by side when they fit)."""
    out = stdout_console()
    req = values.request
    name = f"{req.tenant}::{req.metric} {req.grain.value} " + (
        f"[{req.dimension}]" if req.dimension else "(base)"
    )
    if not values.rows:
        out.print(f"No values stored for {escape(name)} in that range.")
        return
    dates = sorted({r[0] for r in values.rows})
    by_slice: dict[str | None, dict[Any, float]] = {}
    for d, s, v in values.rows:
        by_slice.setdefault(s, {})[d] = v
    out.print(
        f"[bold]{escape(name)}[/bold]: {len(dates)} periods "
        f"{dates[0].isoformat()}..{dates[-1].isoformat()}"
    )
    label_width = max(len(str(s or "")) for s in by_slice)
    for s, points in by_slice.items():
        series = [points.get(d) for d in dates]
        present = [v for v in series if v is not None]
        label = f"{s:<{label_width}} " if s is not None else ""
        stats = (
            f"  min {format_number(min(present))}  max {format_number(max(present))}  "
            f"last {format_number(present[-1])}"
        )
        room = max(out.width - 2 - len(label) - len(stats), 8)  # the latest points that fit
        out.print(f"  {escape(label)}{sparkline(series[-room:])}{stats}", highlight=False)
    _print_values(out, dates, by_slice)


def _print_values(
    out: Console, dates: list[Any], by_slice: dict[str | None, dict[Any, float]]
) -> None:
    """Dates down, one column per slice; the long form (date, slice, value) if too wide,
    fitted like every table (a long slice name shrinks in the middle, never wraps)."""
    wide = _new_table(["date", *(str(s) if s is not None else "value" for s in by_slice)])
    places = _decimals(v for points in by_slice.values() for v in points.values())
    for d in dates:
        wide.add_row(d.isoformat(), *(_fixed(p.get(d), places) for p in by_slice.values()))
    fits = Measurement.get(out, out.options.update_width(10_000), wide).maximum <= out.width
    if fits or len(by_slice) == 1:
        out.print(wide)
        return
    rows = [
        (d.isoformat(), escape(str(s)), _fixed(points[d], places))
        for d in dates
        for s, points in by_slice.items()
        if d in points
    ]
    print_fitted(out, None, LONG_COLUMNS, rows)


LONG_COLUMNS = (Column("date"), Column("slice"), Column("value", "right"))


def _decimals(values: Iterable[float]) -> int:
    """The decimal places that show every value as stored (up to 4), so columns line up."""
    text = (format_value(v) for v in values)
    return max((len(t.partition(".")[2]) for t in text), default=0)


def _fixed(value: float | None, places: int) -> str:
    return "" if value is None else f"{value:,.{places}f}"


def _new_table(headers: list[str]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for i, header in enumerate(headers):
        table.add_column(escape(header), justify="left" if i < 1 else "right", no_wrap=True)
    return table
