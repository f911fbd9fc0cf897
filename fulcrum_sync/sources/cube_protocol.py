"""Cube's REST protocol: the query for one page, the rows and members of an answer, errors."""

from __future__ import annotations

import email.utils
from datetime import UTC, date, datetime
from typing import Any

import httpx

from fulcrum_sync.domain import GRAINS, SourceError
from fulcrum_sync.secrets import redact
from fulcrum_sync.sources.base import FetchRequest, SeriesRow, SourceMetadata

_SNIPPET = 200


def build_query(request: FetchRequest, *, limit: int, offset: int = 0) -> dict[str, Any]:
    """Return the Cube query for one page of ``request``: explicit limit, offset and order.

    The tenant's filters (if any) go in ``filters``, as Cube's ``{member, operator, values}``.
    """
    metric = request.metric
    query: dict[str, Any] = {
        "measures": [metric.measure],
        "timeDimensions": [
            {
                "dimension": metric.time_dimension,
                "granularity": GRAINS[request.grain].cube_granularity,
                "dateRange": [request.window.start.isoformat(), request.window.end.isoformat()],
            }
        ],
        "order": [[metric.time_dimension, "asc"]],
        "timezone": "UTC",
        "limit": limit,
        "offset": offset,
    }
    if request.dimension is not None:
        query["dimensions"] = [request.dimension.member]
        query["order"].append([request.dimension.member, "asc"])
    if request.filters:
        query["filters"] = [
            {"member": f.member, "operator": f.operator, "values": list(f.values)}
            if f.values
            else {"member": f.member, "operator": f.operator}
            for f in request.filters
        ]
    return query


def parse_rows(data: list[Any], request: FetchRequest) -> list[SeriesRow]:
    """Turn Cube's ``data`` rows into SeriesRows; raise SourceError on a malformed row."""
    granularity = GRAINS[request.grain].cube_granularity
    time_key = f"{request.metric.time_dimension}.{granularity}"
    blended = f"time.{granularity}"  # what a blendingQuery's rows carry as well
    measure = request.metric.measure
    member = request.dimension.member if request.dimension else None
    rows: list[SeriesRow] = []
    for item in data:
        if isinstance(item, dict) and time_key not in item and blended in item:
            item = {**item, time_key: item[blended]}
        if not isinstance(item, dict) or not isinstance(item.get(time_key), str):
            raise SourceError(f"malformed Cube answer: a row lacks the time member {time_key!r}")
        try:
            day = date.fromisoformat(item[time_key][:10])
        except ValueError:
            raise SourceError(
                f"malformed Cube answer: bad time {item[time_key][:40]!r} in {time_key!r}"
            ) from None
        raw_slice = item.get(member) if member else None  # a null slice stays None
        slice_ = None if raw_slice is None else str(raw_slice)
        rows.append(SeriesRow(day, _to_float(item.get(measure)), slice_))
    return rows


def _to_float(raw: Any) -> float | None:
    """Return Cube's measure value as a float (it sends strings); None and junk give None."""
    if raw is None or isinstance(raw, bool):
        return None
    try:
        return float(raw)
    except (TypeError, ValueError):
        return None


def load_data(body: dict[str, Any], what: str) -> list[Any]:
    """Return the ``data`` rows of a /load answer (also inside a one-element ``results``)."""
    data = body.get("data")
    if data is None and isinstance(body.get("results"), list) and body["results"]:
        first = body["results"][0]
        data = first.get("data") if isinstance(first, dict) else None
    if not isinstance(data, list):
        raise SourceError(f"{what}: malformed Cube answer: no 'data' list")
    return data


def retry_after(response: httpx.Response) -> float | None:
    """Return the Retry-After delay in seconds (number or HTTP date), if the server sent one."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def parse_meta(body: dict[str, Any], what: str) -> SourceMetadata:
    """Return every measure and dimension name of the cubes (and views) in a /meta answer."""
    cubes = body.get("cubes")
    if not isinstance(cubes, list):
        raise SourceError(f"{what}: malformed Cube answer: no 'cubes' list")
    measures: set[str] = set()
    dimensions: set[str] = set()
    for cube in cubes:
        if not isinstance(cube, dict):
            continue
        for kind, names in (("measures", measures), ("dimensions", dimensions)):
            for member in cube.get(kind) or ():
                if isinstance(member, dict) and isinstance(member.get("name"), str):
                    names.add(member["name"])
    return SourceMetadata(frozenset(measures), frozenset(dimensions))


def error_detail(response: httpx.Response) -> str:
    """Return ``": <Cube's error text>"`` for an error response (redacted, shortened)."""
    try:
        payload = response.json()
    except ValueError:
        text = response.text.strip()
    else:
        error = payload.get("error") if isinstance(payload, dict) else None
        text = str(error) if error is not None else response.text.strip()
    text = redact(" ".join(text.split()))[:_SNIPPET]
    return f": {text}" if text else ""
