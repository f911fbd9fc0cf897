"""Cache table names: validate the tenant and metric parts, build the name, quote it.

Naming (the same logical name for every target)::

    CACHE_<TENANT>_<METRIC>_<GRAIN>      e.g. CACHE_ACME_NEW_REVENUE_DAY

* ``-`` and ``.`` in a tenant identifier or metric id become ``_``; the whole result must
  match ``[A-Za-z0-9_]{1,63}`` or the name is refused with InputError before any SQL runs.
* Snowflake gets the name upper-cased, the local database lower-cased: each engine's case
  for unquoted identifiers, so readers can write ``select * from cache_acme_new_revenue_day``
  unquoted. We always double-quote it ourselves.
* A name longer than the target allows (PostgreSQL: 63) is cut and ends in ``_`` plus the
  first 8 hex digits of its SHA-256, so it stays unique and stable.
* Two contexts that map to the same name (``a-b`` and ``a_b``) are refused, see
  :func:`check_collisions`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from fulcrum_sync.domain import Grain, InputError

PART_RE = re.compile(r"[A-Za-z0-9_]{1,63}")  # used with fullmatch: no "$" newline slip
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")  # a whole identifier (fullmatch), unquoted
TABLE_PREFIX = "CACHE"
HASH_DIGITS = 8


@dataclass(frozen=True, slots=True)
class CacheTable:
    """A cache table: its bare ``name`` (case as created) and ``qualified`` display name."""

    name: str
    qualified: str


def normalize_part(text: str, what: str) -> str:
    """Return ``text`` with ``-``/``.`` mapped to ``_``, upper-cased; raise InputError if unsafe.

    :param text: a tenant identifier or metric id.
    :param what: ``tenant`` or ``metric``, for the error message.
    """
    mapped = str(text).replace("-", "_").replace(".", "_")
    if not PART_RE.fullmatch(mapped):
        raise InputError(
            f"invalid {what} {text!r} for a cache table name: only letters, digits, '_', '-' "
            "and '.' are allowed (at most 63)"
        )
    return mapped.upper()


def cache_table_name(tenant: str, metric: str, grain: Grain, max_length: int = 255) -> str:
    """Return ``CACHE_<TENANT>_<METRIC>_<GRAIN>`` (upper case), shortened past ``max_length``.

    Raises InputError when the tenant or metric is not a safe identifier part.
    """
    name = "_".join(
        (
            TABLE_PREFIX,
            normalize_part(tenant, "tenant"),
            normalize_part(metric, "metric"),
            Grain.parse(grain).value.upper(),
        )
    )
    if len(name) > max_length:
        digest = hashlib.sha256(name.encode()).hexdigest()[:HASH_DIGITS].upper()
        name = f"{name[: max_length - HASH_DIGITS - 1]}_{digest}"
    return name


def quote(name: str, what: str = "identifier") -> str:
    """Return ``name`` double-quoted after checking it against the strict pattern.

    Raises InputError for anything but letters, digits, ``_`` and ``$`` (first: letter or ``_``).
    """
    if not NAME_RE.fullmatch(name) or len(name) > 255:
        raise InputError(f"invalid {what} {name!r}: only letters, digits, '_' and '$' allowed")
    return '"' + name.replace('"', '""') + '"'


def collisions(names: Iterable[tuple[str, str]], only: set[str] | None = None) -> list[str]:
    """Return one message per table that two or more contexts would share.

    ``names`` holds (context, table) pairs; table names compare case-insensitively. With
    ``only``, just clashes that involve one of those contexts count (the others are refused
    when they are loaded themselves).
    """
    groups: dict[str, list[str]] = {}
    for context, table in names:
        members = groups.setdefault(table.upper(), [])
        if context not in members:
            members.append(context)
    return [
        f"contexts {' and '.join(sorted(contexts))} would share the cache table {table}: "
        "rename a tenant identifier or metric id"
        for table, contexts in groups.items()
        if len(contexts) > 1 and (only is None or only.intersection(contexts))
    ]


def check_collisions(names: Iterable[tuple[str, str]], only: set[str] | None = None) -> None:
    """Raise InputError when two contexts map to one table (see :func:`collisions`)."""
    found = collisions(names, only)
    if found:
        raise InputError(found[0])
