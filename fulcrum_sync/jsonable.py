"""Turn any value fulcrum-sync produces into plain JSON data: the one encoder logs, output and
run records share."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from typing import Any, Literal

MASK = "***"
_AS_IS = frozenset({str, int, bool, type(None)})


def jsonable(value: Any, *, non_finite: Literal["null", "text"] = "null") -> Any:
    """Return ``value`` as JSON-ready data: dataclasses and pydantic models become dicts,
    dates ISO strings (datetimes in UTC), enums their value, secrets ``***``.

    :param non_finite: how NaN and infinities come out: ``null`` for documents people and
        programs read (valid JSON), ``text`` (``"nan"``, ``"inf"``) in log lines, where the
        difference between a missing and a broken number is worth keeping.
    """
    kind = type(value)
    if kind in _AS_IS:  # the common cases first, by their exact type
        return value
    if kind is dict:
        return {str(k): jsonable(v, non_finite=non_finite) for k, v in value.items()}
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return None if non_finite == "null" else str(value)
    if isinstance(value, Enum):
        return jsonable(value.value, non_finite=non_finite)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return round(value.total_seconds(), 3)
    if isinstance(value, Decimal):
        return jsonable(float(value), non_finite=non_finite)
    if isinstance(value, PurePath):
        return str(value)
    if type(value).__name__ in ("SecretStr", "SecretBytes"):
        return MASK
    if hasattr(value, "model_dump"):  # a pydantic model
        return jsonable(value.model_dump(mode="json"), non_finite=non_finite)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: jsonable(getattr(value, f.name), non_finite=non_finite)
            for f in dataclasses.fields(value)
        }
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, non_finite=non_finite) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v, non_finite=non_finite) for v in value]
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    return str(value)
