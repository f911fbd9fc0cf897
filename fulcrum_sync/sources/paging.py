"""Rows per page, shared by every worker: halved when Cube refuses a page over its query limit.

Cube refuses a query whose ``limit`` exceeds its ``CUBEJS_DB_QUERY_LIMIT`` with a plain
error (HTTP 500, "The query limit has been exceeded."). That is not transient: retrying the
same page fails the same way. The page size is halved instead (down to a floor) and the
smaller size is used by every worker from then on; one warning names the setting to change.
"""

from __future__ import annotations

import logging
import threading

from fulcrum_sync.domain import QueryRejectedError, SourceError

log = logging.getLogger(__name__)

PAGE_SIZE_SETTING = "FULCRUM_SYNC_CUBE_PAGE_SIZE"
PAGE_FLOOR = 100
_LIMIT_TEXT = "query limit has been exceeded"


class QueryLimitError(SourceError):
    """Cube refused a page because its ``limit`` is above Cube's query limit."""


def is_query_limit(text: str) -> bool:
    """Return True when Cube's error text is its query-limit refusal."""
    return _LIMIT_TEXT in text.lower()


class PageSize:
    """The current page size of one source.

    :param configured: the size the settings ask for (``FULCRUM_SYNC_CUBE_PAGE_SIZE``).
    :param floor: the smallest size tried; a refusal at the floor is an error.
    """

    def __init__(self, configured: int, floor: int = PAGE_FLOOR) -> None:
        self.configured = configured
        self.floor = min(floor, configured)
        self._size = configured
        self._warned = False
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        return self._size

    def shrink(self, refused: int, error: QueryLimitError) -> None:
        """Halve the size after Cube refused a page of ``refused`` rows.

        Workers refused at the same size halve it once. At the floor, raises
        QueryRejectedError: that series fails (no outage: retrying would not help).
        """
        with self._lock:
            if refused <= self.floor:
                raise QueryRejectedError(
                    f"{error}; even {refused}-row pages are over Cube's query limit: raise "
                    f"CUBEJS_DB_QUERY_LIMIT in Cube or lower {PAGE_SIZE_SETTING}"
                ) from error
            if self._size == refused:
                self._size = max(self.floor, refused // 2)
                log.debug("Cube refused %d-row pages; trying %d", refused, self._size)

    def confirm(self, size: int) -> None:
        """A page of ``size`` rows was accepted: say once that the setting is too high."""
        if size >= self.configured or self._warned:
            return
        with self._lock:
            if self._warned:
                return
            self._warned = True
        log.warning(
            "Cube's query limit (CUBEJS_DB_QUERY_LIMIT) is below %s=%d: Cube refused those "
            "pages, so pages of %d rows are used from now on; set %s=%d (or less) to avoid the "
            "refused queries",
            PAGE_SIZE_SETTING,
            self.configured,
            size,
            PAGE_SIZE_SETTING,
            size,
        )
