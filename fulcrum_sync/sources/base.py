"""The interface every semantic source implements, and the rows it returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import NamedTuple, Protocol

from fulcrum_sync.catalog import DimensionDef, FilterDef, MetricDef
from fulcrum_sync.domain import Grain, SourceStats, StopRequested, Window
from fulcrum_sync.domain.columns import ColumnRows


class SeriesRow(NamedTuple):
    """One point of a series as the source returned it (not yet sanitized).

    ``value`` may be None or NaN and ``slice`` None; the sync service counts and skips those.
    ``slice`` is None for the base series.
    """

    date: date
    value: float | None
    slice: str | None = None


class SeriesColumns(ColumnRows[SeriesRow]):
    """A series' rows as columns (the demo's): ``sanitize`` reads the columns, and a
    :class:`SeriesRow` is made only for a row something reads (domain/columns.py).

    :param slices: each row's slice; None for a base series (every slice None).
    :param clean: the source vouches that every value is a finite float, every slice a str
        (of a dimension) and no date (date and slice) comes twice: ``sanitize`` then takes
        the columns as they are, without checking each row again (the demo's grid of
        periods and slice names, values drawn as floats and checked finite as one array).
    """

    __slots__ = ("clean", "slices")

    def __init__(
        self,
        dates: Sequence[date],
        values: Sequence[float | None],
        slices: Sequence[str | None] | None = None,
        *,
        clean: bool = False,
    ) -> None:
        super().__init__(
            (dates, values, (None,) * len(dates) if slices is None else slices), SeriesRow
        )
        self.slices, self.clean = slices, clean

    @property
    def dates(self) -> Sequence[date]:
        """Each row's date."""
        return self.columns[0]

    @property
    def values(self) -> Sequence[float | None]:
        """Each row's value."""
        return self.columns[1]


Rows = Sequence[SeriesRow]  # a source's rows: a list, or SeriesColumns


@dataclass(frozen=True, slots=True)
class FetchRequest:
    """One query: a tenant's metric at a grain over a window, optionally split by a dimension.

    ``filters`` (the tenant's, from the catalog) are added to the query as Cube filters.
    """

    tenant_id: int
    tenant: str
    metric: MetricDef
    grain: Grain
    window: Window
    dimension: DimensionDef | None = None
    filters: tuple[FilterDef, ...] = ()


@dataclass(frozen=True, slots=True)
class SourceMetadata:
    """The members a source knows: measure names, dimension names (time ones included)."""

    measures: frozenset[str] = field(default_factory=frozenset)
    dimensions: frozenset[str] = field(default_factory=frozenset)


class Source(Protocol):
    """A semantic source: Cube in production, the demo generator by default.

    A source may also offer ``fetch_many(requests) -> list[rows | Exception]`` to fetch
    several series in fewer round trips (Cube); :func:`fetch_all` uses it when present.
    """

    name: str

    def fetch_series(self, request: FetchRequest) -> Rows:
        """Return the rows of the requested series; raise SourceError on failure."""
        ...

    def fetch_metadata(self, tenant: str) -> SourceMetadata:
        """Return the members the source knows for ``tenant``; raise SourceError on failure."""
        ...

    def stats(self) -> SourceStats:
        """Return the requests, retries and 429 pauses so far (zeros for a local source)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


FetchOutcome = Rows | Exception


def fetch_all(source: Source, requests: Sequence[FetchRequest]) -> list[FetchOutcome]:
    """Fetch ``requests`` together: the rows or the error of each, in order.

    A source with ``fetch_many`` (Cube: one multi request, shared queries) gets them in one
    call; any other gets one ``fetch_series`` each. StopRequested is raised, never returned.
    """
    many = getattr(source, "fetch_many", None)
    if many is not None:
        outcomes: list[FetchOutcome] = many(requests)
        return outcomes
    out: list[FetchOutcome] = []
    for request in requests:
        try:
            out.append(source.fetch_series(request))
        except StopRequested:
            raise
        except Exception as exc:  # isolation: one series failing never stops the others
            out.append(exc)
    return out


def cube_of(member: str) -> str:
    """The cube (or view) of a member: ``orders.revenue`` -> ``orders``."""
    return member.partition(".")[0]
