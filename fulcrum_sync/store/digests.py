"""Window digests: skip reading back (and writing) the part of a series that is unchanged.

A sync that writes a series keeps, in the series' status row
(``metric_sync_status.window_digest``, written in the same transaction), a digest of the
rows it wrote: for each of the first few dates D of the window an INCREMENTAL sync of the
next periods starts at, a 64-bit hash of the written rows dated D … the last date (their
dates, slices and values). The next incremental window starts one period later, at one of
those dates: when the digest of its rows up to that last date equals the stored one, those
rows are exactly what is stored, and only the rows after it are written, without reading
the window back. Any other case (a shift of more periods, rows not in date order, a changed
value, no digest yet, a digest of an older format) reads the window back and compares row
by row, as before.

The digest is of what the sync wrote, not of what the table holds now: a stored value edited
by hand while the source stays unchanged is not seen by the next sync. ``verify`` compares
source and state and reports it (its fix, ``sync --force-full``, replaces the series). Every
other writer keeps the digest true: a FULL sync replaces it, a write for an older period
(a backfill; the status row stays on the later period) that changes rows clears it, and
``state reset`` of values clears it.

Format: ``v2;LAST;D1:HEX;D2:HEX;…`` with dates as proleptic ordinals (``date.toordinal``),
D1 < D2 < … < Dm (m <= :data:`SUFFIXES`), and HEX the first 8 bytes of a SHA-256. Each row
is hashed once: one SHA-256 is fed, as parts, the rows dated after Dm up to LAST, then the
rows from the first dated Dm, then those from the first dated Dm-1 up to Dm, … down to D1;
the digest of Di is its state after the part of Di. Each part is fed as its row count and
the byte length of its slices (8 bytes each, little-endian), its dates (ordinals, 4 bytes
each) and its values (float64), both in the machine's byte order, then its slices (a
dimension's; none for a base series) joined by U+001F, in UTF-8. A digest without the
``v2`` tag (an earlier version's: a BLAKE2b of each suffix whole) is unknown: the window is
read back once, and the new digest written.
"""

from __future__ import annotations

import hashlib
import struct
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, NamedTuple

from fulcrum_sync.domain.columns import ColumnRows

SUFFIXES = 4  # the next incremental window may start 0–3 periods after this one's
_TAG = "v2"
_SEP = "\x1f"
_HEAD = struct.Struct("<qq")  # a part's row count and its slices' byte length


class Columns(NamedTuple):
    """A series' clean rows as columns (``slices`` None for a base series), in row order."""

    dates: Sequence[Any]
    values: Sequence[float]
    slices: Sequence[str] | None


class CleanRows(ColumnRows[tuple[Any, ...]]):
    """The rows of clean columns, ``(date, value)`` or ``(date, slice, value)``, that keep
    those columns: :func:`prepare` reads them instead of taking the rows apart again, and a
    row is made only when something reads it (an incremental sync writes a few)."""

    __slots__ = ()

    def __init__(self, columns: Columns) -> None:
        dates, values, slices = columns
        super().__init__((dates, values) if slices is None else (dates, slices, values))

    @property
    def named(self) -> Columns:
        """The columns by name: dates, values, slices (None for a base series)."""
        if len(self.columns) == 2:
            return Columns(self.columns[0], self.columns[1], None)
        dates, slices, values = self.columns
        return Columns(dates, values, slices)


@dataclass(frozen=True, slots=True)
class Prepared:
    """The rows of one write, ready to digest: dates (ordinals, ascending), and as the bytes
    each part feeds (see the module doc) their dates (``days``), values and slices."""

    ordinals: list[int]
    values: bytes
    days: bytes
    slices: Sequence[str] | None

    def digests(self, bounds: Sequence[int], *, every: bool = True) -> list[str]:
        """The digests of the parts that ``bounds`` (ascending row indexes) cut: one SHA-256
        fed the last part (``bounds[-2]:bounds[-1]``, the rows after the last date digested),
        then each one before it down to the first; the digest of each part but the last (the
        first one's only, unless ``every``), first part first."""
        days, values, slices = self.days, self.values, self.slices
        h = hashlib.sha256()
        update, out = h.update, []
        stop, parts = bounds[-1], len(bounds) - 1
        for i in range(parts - 1, -1, -1):
            start = bounds[i]
            text = b"" if slices is None else _SEP.join(slices[start:stop]).encode()
            update(_HEAD.pack(stop - start, len(text)))
            update(days[start * 4 : stop * 4])
            update(values[start * 8 : stop * 8])
            update(text)
            stop = start
            if every and 0 < i < parts - 1:
                out.append(h.copy().hexdigest()[:16])
        out.append(h.hexdigest()[:16])
        out.reverse()
        return out

    def suffixes(self, dates: Sequence[int], last: int, *, every: bool = True) -> list[str]:
        """The digests of the rows from the first dated ``dates[i]`` to the last dated
        ``last``, for each i (``dates`` ascending, none after ``last``); only the first of
        them unless ``every``. The parts tile the rows: a row dated between two of ``dates``
        is fed with the earlier one's."""
        ordinals = self.ordinals
        bounds = [bisect_left(ordinals, day) for day in dates]
        after = bisect_right(ordinals, dates[-1], bounds[-1])  # the rows after the last date
        return self.digests([*bounds, after, bisect_right(ordinals, last, after)], every=every)


class _Ordinals(dict[Any, int]):
    """Each date's ordinal, computed once per process (every series of a run shares its
    window's dates); what is not a date raises as ``toordinal`` would."""

    def __missing__(self, day: Any) -> int:
        ordinal: int = day.toordinal()
        if len(self) < 100_000:
            self[day] = ordinal
        return ordinal


_ORDINALS = _Ordinals()


def prepare(rows: Sequence[tuple[Any, ...]], dimensional: bool) -> Prepared | None:
    """The rows (``(date, value)``, or ``(date, slice, value)`` for a dimension) ready to
    digest; None when they cannot be (no rows, not in date order, not dates). Reads the
    columns of :class:`CleanRows` when it has them."""
    if not rows:
        return None
    columns = rows.named if isinstance(rows, CleanRows) else _columns(rows, dimensional)
    try:
        ordinals = list(map(_ORDINALS.__getitem__, columns.dates))
        n = len(ordinals)  # machine byte order: as an array's (struct packs faster)
        days, values = struct.pack(f"{n}i", *ordinals), struct.pack(f"{n}d", *columns.values)
    except (AttributeError, TypeError, OverflowError, struct.error):
        return None
    if ordinals != sorted(ordinals):
        return None  # only a date-ordered window has its later dates at its end
    return Prepared(ordinals, values, days, columns.slices if dimensional else None)


def _columns(rows: Sequence[tuple[Any, ...]], dimensional: bool) -> Columns:
    columns: list[Sequence[Any]] = list(zip(*rows, strict=False))  # a pass each, in C
    if len(columns) == (3 if dimensional else 2):
        return Columns(columns[0], columns[-1], columns[1] if dimensional else None)
    return Columns(  # rows of another shape: by position
        [r[0] for r in rows],
        [r[-1] for r in rows],
        [r[1] for r in rows] if dimensional else None,
    )


def unchanged_prefix(p: Prepared, stored: str | None) -> int | None:
    """How many leading rows of ``p`` are stored as they are, by the stored digest: the rows
    up to the last date it covers, when it has a digest from ``p``'s first date and it
    matches. None when that is not known (then the window is read back)."""
    if not stored:
        return None
    try:
        tag, last_text, *entries = stored.split(";")
        if tag != _TAG or not entries:
            return None  # an older format (or none): read the window back
        last, first = int(last_text), p.ordinals[0]
        dates = [int(e.partition(":")[0]) for e in entries]
        at = dates.index(first)
    except ValueError:
        return None  # not a digest this version wrote, or none from p's first date
    if dates[-1] > last:
        return None
    wanted = entries[at].partition(":")[2]
    matches = p.suffixes(dates[at:], last, every=False)[0] == wanted
    return bisect_right(p.ordinals, last) if matches else None


def encode(p: Prepared, since: date | None) -> str:
    """The digest of the rows of ``p`` to keep: one per distinct date from ``since`` (the
    start of this period's incremental window; the first row's date when None), for the
    first :data:`SUFFIXES` dates."""
    ordinals, n = p.ordinals, len(p.ordinals)
    at = 0 if since is None else bisect_left(ordinals, since.toordinal())
    starts: list[int] = []  # the first row of each date digested
    while at < n and len(starts) < SUFFIXES:
        starts.append(at)
        at = bisect_right(ordinals, ordinals[at], at)
    digests = p.digests([*starts, at, n]) if starts else []
    entries = (f"{ordinals[i]}:{x}" for i, x in zip(starts, digests, strict=True))
    return ";".join([_TAG, str(ordinals[-1]), *entries])


__all__ = ["SUFFIXES", "CleanRows", "Columns", "Prepared", "encode", "prepare", "unchanged_prefix"]
