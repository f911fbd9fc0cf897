"""The interface every cache target implements, and what a load reports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Protocol

from fulcrum_sync.domain import Grain
from fulcrum_sync.sinks.identifiers import CacheTable

if TYPE_CHECKING:
    import pandas as pd

# The columns of the frame a sink loads (store/cache.py builds it) and of the cache table,
# which adds the grain and the load timestamp (UTC). Base rows have no dimension (NULL).
FRAME_COLUMNS = ("date", "dimension_name", "dimension_slice", "value")
TABLE_COLUMNS = (*FRAME_COLUMNS, "grain", "loaded_at")

# One row of a cache table as ``read`` returns it; base rows have no dimension (None, None).
CacheRow = tuple[date, str | None, str | None, float]

# Bytes per row besides the strings: date (4), value (8), loaded_at (8).
_FIXED_ROW_BYTES = 20


@dataclass(frozen=True, slots=True)
class LoadStats:
    """What one table replace did: rows now in the table and its size.

    ``size_estimated`` is True when the target did not report a size and ``size_bytes`` was
    estimated from the loaded data instead.
    """

    rows: int
    size_bytes: int | None
    size_estimated: bool = False

    @property
    def size_mb(self) -> float | None:
        return None if self.size_bytes is None else self.size_bytes / 1_000_000


class CacheSink(Protocol):
    """A cache target: Snowflake, or the local state database."""

    target: str

    @property
    def destination(self) -> str:
        """The connection the sink loads through: sinks with the same one share it (loads to
        different destinations may run at once, loads to one run one after the other)."""
        ...

    def table_for(self, tenant: str, metric: str, grain: Grain) -> CacheTable:
        """Return the (validated) table of a context; raise InputError for unsafe names."""
        ...

    def open(self) -> None:
        """Connect; raise SinkError when the target is unreachable or refuses us."""
        ...

    def ensure_table(self, table: CacheTable) -> None:
        """Create ``table`` if it does not exist; leave its contents alone."""
        ...

    def replace(
        self, table: CacheTable, frame: pd.DataFrame, grain: Grain, loaded_at: datetime
    ) -> LoadStats:
        """Make ``frame`` the whole contents of ``table`` atomically (creating it if missing)."""
        ...

    def read(self, table: CacheTable) -> list[CacheRow] | None:
        """Return the table's ``(date, dimension_name, dimension_slice, value)`` rows, or None
        when the table does not exist (``verify`` compares them; nothing writes)."""
        ...

    def close(self) -> None:
        """Release the connection (safe to call twice, or without open)."""
        ...

    def batch(self) -> CacheBatch:
        """Start loading several tables of this sink's destination together (after open)."""
        ...


class CacheBatch(Protocol):
    """Tables of one destination loaded together: staged with ``add``/``ensure``, then
    ``load`` replaces each atomically and returns each one's outcome."""

    def add(
        self, table: CacheTable, frame: pd.DataFrame, grain: Grain, loaded_at: datetime
    ) -> None:
        """Stage ``frame`` as the whole new contents of ``table``."""
        ...

    def ensure(self, table: CacheTable) -> None:
        """Make sure ``table`` exists; leave its rows alone."""
        ...

    def load(self) -> dict[str, LoadStats | Exception]:
        """Load everything staged: ``{table.qualified: stats or that table's error}``.

        Raises SinkError when nothing could be loaded.
        """
        ...

    def close(self) -> None:
        """Release what staging held (files); safe after ``load`` or without it."""
        ...


class SerialBatch:
    """A batch that loads each table as it is added, one after the other (the local target)."""

    def __init__(self, sink: CacheSink) -> None:
        self._sink = sink
        self._outcomes: dict[str, LoadStats | Exception] = {}

    def add(
        self, table: CacheTable, frame: pd.DataFrame, grain: Grain, loaded_at: datetime
    ) -> None:
        try:
            self._outcomes[table.qualified] = self._sink.replace(table, frame, grain, loaded_at)
        except Exception as exc:  # that table's failure: the others go on
            self._outcomes[table.qualified] = exc

    def ensure(self, table: CacheTable) -> None:
        try:
            self._sink.ensure_table(table)
        except Exception as exc:
            self._outcomes[table.qualified] = exc

    def load(self) -> dict[str, LoadStats | Exception]:
        return dict(self._outcomes)

    def close(self) -> None:
        """Nothing to release."""


def estimate_bytes(frame: pd.DataFrame, grain: Grain) -> int:
    """Estimate the stored size of ``frame`` as a cache table (fixed widths plus strings)."""
    strings = sum(
        int(frame[col].dropna().astype(str).str.len().sum())
        for col in ("dimension_name", "dimension_slice")
    )
    return len(frame) * (_FIXED_ROW_BYTES + len(grain.value)) + strings
