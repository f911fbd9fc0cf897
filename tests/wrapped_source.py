"""A source that hands every call to another: test fakes override only what they change."""

from __future__ import annotations

from fulcrum_sync.domain import SourceStats
from fulcrum_sync.sources.base import FetchRequest, SeriesRow, Source, SourceMetadata


class WrappedSource:
    """Everything ``inner`` does, under ``inner``'s name; no ``fetch_many`` (one query each)."""

    def __init__(self, inner: Source) -> None:
        self.inner = inner
        self.name = inner.name

    def fetch_series(self, request: FetchRequest) -> list[SeriesRow]:
        return self.inner.fetch_series(request)

    def fetch_metadata(self, tenant: str) -> SourceMetadata:
        return self.inner.fetch_metadata(tenant)

    def stats(self) -> SourceStats:
        return self.inner.stats()

    def close(self) -> None:
        self.inner.close()
