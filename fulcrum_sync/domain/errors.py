"""The exception tree: every error fulcrum-sync raises on purpose, with its exit code.

::

    FulcrumError
    ├── InputError          bad usage or configuration: unknown grain, tenant, metric,
    │   │                   period; bad flags or files; a refused credential   (exit 2)
    │   └── CatalogError    a catalog that does not validate: every problem, each with
    │                       its field path                                      (exit 2)
    └── DependencyError     something we depend on failed                       (exit 3
        ├── SourceError     the semantic layer (Cube) or the demo generator      when nothing
        ├── StoreError      the state database                                   could be done)
        └── SinkError       the cache (Snowflake or local)

A run that finished with some contexts failed is not an exception: it is a result whose
outcome is ``partial`` (exit 1). The CLI maps both to exit codes in one function.
"""

from __future__ import annotations

from collections.abc import Sequence


class FulcrumError(Exception):
    """Base of every error fulcrum-sync raises on purpose."""


class InputError(FulcrumError):
    """Bad usage or configuration: nothing was done (exit code 2)."""


class CatalogError(InputError):
    """A catalog that does not validate; ``problems`` holds every one (``field.path: what``).

    Its message is one line: the first ``shown`` problems joined by ``; ``, then how many more.
    """

    def __init__(self, origin: str, problems: Sequence[str], shown: int = 20) -> None:
        self.origin = origin
        self.problems = list(problems)
        listed = "; ".join(self.problems[:shown])
        if len(self.problems) > 1:
            listed = f"{len(self.problems)} problems: {listed}"
        if len(self.problems) > shown:
            listed += f" (and {len(self.problems) - shown} more)"
        super().__init__(f"invalid catalog {origin}: {listed}")


class DependencyError(FulcrumError):
    """A dependency (source, database, cache) failed (exit code 3 if nothing could be done)."""


class SourceError(DependencyError):
    """The semantic source failed or refused a query."""


class StoreError(DependencyError):
    """The state database failed."""


class SinkError(DependencyError):
    """The cache target failed."""
