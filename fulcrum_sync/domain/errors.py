"""The exception tree: every error fulcrum-sync raises on purpose, with its exit code.

::

    FulcrumError
    ├── InputError          bad usage or configuration: unknown grain, tenant, metric,
    │                       period; bad flags or files; a refused credential   (exit 2)
    └── DependencyError     something we depend on failed                       (exit 3
        ├── SourceError     the semantic layer (Cube) or the demo generator      when nothing
        │   └── SourceDownError  the source is down (its breaker is open):       could be done)
        │                        the run stops, keys not started are released
        ├── StoreError      the state database
        └── SinkError       the cache (Snowflake or local)

A run that finished with some contexts failed is not an exception: it is a result whose
outcome is ``partial`` (exit 1). The CLI maps both to exit codes in one function.
"""

from __future__ import annotations


class FulcrumError(Exception):
    """Base of every error fulcrum-sync raises on purpose."""


class InputError(FulcrumError):
    """Bad usage or configuration: nothing was done (exit code 2)."""


class DependencyError(FulcrumError):
    """A dependency (source, database, cache) failed (exit code 3 if nothing could be done)."""


class SourceError(DependencyError):
    """The semantic source failed or refused a query."""


class SourceDownError(SourceError):
    """The source is down: a request exhausted its retries and the breaker opened.

    No further request goes to the source in this run; the services stop the run (exit 3) and
    release the keys not started, so the next run does them.
    """


class StoreError(DependencyError):
    """The state database failed."""


class SinkError(DependencyError):
    """The cache target failed."""
