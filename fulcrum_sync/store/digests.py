"""Window digests: skip reading back (and writing) the part of a series that is unchanged.

A sync that writes a series keeps, in the series' status row
(``metric_sync_status.window_digest``, written in the same transaction), a digest of the
rows it wrote: for each of the first few dates D of the window an INCREMENTAL sync of the
next periods starts at, a 64-bit BLAKE2b of the written rows dated D … the last date (their
dates, slices and values, in order). The next incremental window starts one period later,
at one of those dates: when the digest of its rows up to that last date equals the stored
one, those rows are exactly what is stored, and only the rows after it are written, without
reading the window back. Any other case (a shift of more periods, rows not in date order,
a changed value, no digest yet) reads the window back and compares row by row, as before.

The digest is of what the sync wrote, not of what the table holds now: a stored value edited
by hand while the source stays unchanged is not seen by the next sync. ``verify`` compares
source and state and reports it (its fix, ``sync --force-full``, replaces the series). Every
other writer keeps the digest true: a FULL sync replaces it, a write for an older period
(a backfill; the status row stays on the later period) that changes rows clears it, and
``state reset`` of values clears it.

Format: ``LAST;D1:HEX;D2:HEX;…`` with dates as proleptic ordinals (``date.toordinal``).
"""

from __future__ import annotations

import hashlib
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from itertools import accumulate
from typing import Any

SUFFIXES = 4  # the next incremental window may start 0–3 periods after this one's
_SEP = "\x1f"
_PLUS_SEP = (len(_SEP)).__add__  # a slice's length and its separator, in the joined slices


@dataclass(frozen=True, slots=True)
class Prepared:
    """The rows of one write, ready to digest: dates (ordinals, ascending), values, slices
    (``joined``: the slices joined once; ``at``: where each row's slice starts in it, and
    one past its end; each digest hashes a part of it)."""

    ordinals: array[int]
    values: memoryview
    days: memoryview
    slices: Sequence[str] | None
    joined: str = ""
    at: Sequence[int] = ()

    def digest(self, start: int, stop: int) -> str:
        """The digest of rows ``start:stop``."""
        h = hashlib.blake2b(self.days[start * 8 : stop * 8], digest_size=8)
        h.update(self.values[start * 8 : stop * 8])
        if self.slices is not None and stop > start:  # _SEP.join(slices[start:stop])
            h.update(self.joined[self.at[start] : self.at[stop] - 1].encode())
        return h.hexdigest()


class _Ordinals(dict[Any, int]):
    """Each date's ordinal, computed once per process (every series of a run shares its
    window's dates); what is not a date raises as ``toordinal`` would."""

    def __missing__(self, day: Any) -> int:
        ordinal: int = day.toordinal()
        if len(self) < 100_000:
            self[day] = ordinal
        return ordinal


_ORDINALS = _Ordinals()


def prepare(rows: list[tuple[Any, ...]], dimensional: bool) -> Prepared | None:
    """The rows (``(date, value)``, or ``(date, slice, value)`` for a dimension) ready to
    digest; None when they cannot be (no rows, not in date order, not dates)."""
    if not rows:
        return None
    columns: list[Sequence[Any]] = list(zip(*rows, strict=False))  # a pass each, in C
    if len(columns) != (3 if dimensional else 2):  # rows of another shape: by position
        columns = [
            [r[0] for r in rows],
            [r[1] for r in rows] if dimensional else [],
            [r[-1] for r in rows],
        ]
    try:
        ordinals = array("q", list(map(_ORDINALS.__getitem__, columns[0])))
        values = array("d", columns[-1])
    except (AttributeError, TypeError):
        return None
    listed = ordinals.tolist()
    if listed != sorted(listed):
        return None  # only a date-ordered window has its later dates at its end
    days, data = memoryview(ordinals).cast("B"), memoryview(values).cast("B")
    if not dimensional:
        return Prepared(ordinals, data, days, None)
    slices = columns[1]
    at = list(accumulate(map(_PLUS_SEP, map(len, slices)), initial=0))
    return Prepared(ordinals, data, days, slices, _SEP.join(slices), at)


def unchanged_prefix(p: Prepared, stored: str | None) -> int | None:
    """How many leading rows of ``p`` are stored as they are, by the stored digest: the rows
    up to the last date it covers, when it has a digest from ``p``'s first date and it
    matches. None when that is not known (then the window is read back)."""
    if not stored:
        return None
    try:
        last, *entries = stored.split(";")
        first = str(p.ordinals[0])
        wanted = next((e[len(first) + 1 :] for e in entries if e.startswith(first + ":")), None)
        if wanted is None:
            return None
        covered = bisect_right(p.ordinals, int(last))
    except ValueError:
        return None  # not a digest this version wrote: read the window back
    return covered if p.digest(0, covered) == wanted else None


def encode(p: Prepared, since: date | None) -> str:
    """The digest of the rows of ``p`` to keep: one per distinct date from ``since`` (the
    start of this period's incremental window; the first row's date when None), for the
    first :data:`SUFFIXES` dates."""
    ordinals, n = p.ordinals, len(p.ordinals)
    at = 0 if since is None else bisect_left(ordinals, since.toordinal())
    entries = [str(ordinals[-1])]
    while at < n and len(entries) <= SUFFIXES:
        entries.append(f"{ordinals[at]}:{p.digest(at, n)}")
        at = bisect_right(ordinals, ordinals[at], at)
    return ";".join(entries)


__all__ = ["SUFFIXES", "Prepared", "encode", "prepare", "unchanged_prefix"]
