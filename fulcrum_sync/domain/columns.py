"""Rows kept as columns: the row tuples are made only when something reads rows.

A source generates a series column by column (the demo with numpy), ``sanitize`` checks it
column by column and the digests hash it column by column (store/digests.py); an
incremental sync then writes only the rows after the unchanged part of the window, often
one period's. Building a tuple per row of a 90-day window on the way (about 900 per context,
twice) cost more CPU than everything else done with those rows, and their garbage collection
on top. :class:`ColumnRows` is a read-only sequence of rows that holds the columns and makes
the tuples only for what is read: a slice of it makes the rows of that slice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from itertools import repeat
from typing import Any, Generic, TypeVar, overload

Row = TypeVar("Row", bound=tuple[Any, ...])


class ColumnRows(Sequence[Row], Generic[Row]):
    """A read-only sequence of rows made of ``columns`` (equal lengths, in row order).

    :param columns: the columns of the rows, in the rows' order of fields.
    :param make: a row type (a NamedTuple class) the rows are made as; plain tuples if None.

    It compares equal to a list or tuple of the same rows (and to another ColumnRows).
    """

    __slots__ = ("_columns", "_make", "_rows")

    def __init__(
        self, columns: Sequence[Sequence[Any]], make: Callable[..., Row] | None = None
    ) -> None:
        self._columns = tuple(columns)
        self._make = make
        self._rows: list[Row] | None = None

    def _build(self, columns: Sequence[Sequence[Any]]) -> list[Row]:
        rows: Any = zip(*columns, strict=True)
        if self._make is not None:  # tuple.__new__ of the row type: in C, no __new__ call
            rows = map(tuple.__new__, repeat(self._make), rows)  # type: ignore[arg-type]
        return list(rows)

    @property
    def columns(self) -> tuple[Sequence[Any], ...]:
        """The columns, in the rows' order of fields."""
        return self._columns

    def rows(self) -> list[Row]:
        """Every row (made once, then kept)."""
        if self._rows is None:
            self._rows = self._build(self._columns)
        return self._rows

    def __len__(self) -> int:
        return len(self._columns[0]) if self._columns else 0

    @overload
    def __getitem__(self, index: int) -> Row: ...
    @overload
    def __getitem__(self, index: slice) -> list[Row]: ...
    def __getitem__(self, index: int | slice) -> Row | list[Row]:
        if self._rows is not None:
            return self._rows[index]
        if isinstance(index, slice):  # only the rows of the slice are made
            return self._build([column[index] for column in self._columns])
        return self.rows()[index]

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ColumnRows):
            return self.rows() == other.rows()
        if isinstance(other, list | tuple):
            return self.rows() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # like a list: compared by value, mutable cache

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.rows()!r})"
