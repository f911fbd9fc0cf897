"""The exception tree: every error fulcrum-sync raises on purpose, with its exit code.

::

    FulcrumError
    ├── InputError            bad usage or configuration: unknown grain, tenant, metric,
    │   │                     period; bad flags or files                          (exit 2)
    │   ├── RefusedError      the source refused our credentials or address (HTTP 401,
    │   │                     403, 404): checked once, never retried              (exit 2)
    │   ├── TenantRefusedError  one tenant's own Cube refused its credentials or address:
    │   │                     only that tenant's contexts fail, the others run  (exit 1;
    │   │                     2 when every context the run tried failed so)
    │   └── CatalogError      a catalog that does not validate: every problem, each with
    │                         its field path                                      (exit 2)
    ├── StopRequested         a wait (retry sleep, 429 pause, Continue-wait poll) woke on
    │                         SIGTERM/Ctrl-C: the work in flight is abandoned, its key
    │                         released, and the run ends ``interrupted``          (exit 143)
    └── DependencyError       something we depend on failed                        (exit 3
        ├── SourceError       the semantic layer (Cube) or the demo generator       when nothing
        │   ├── QueryRejectedError  one query refused (HTTP 400, an unknown member): could be
        │   │                 that series fails, the others go on (exit 1)          done)
        │   └── SourceDownError  the source is down (its breaker is open): the run
        │                     stops, keys not started are released
        ├── StoreError        the state database
        │   └── StoreBusyError  a lock not granted or a statement cancelled in time: that
        │                     context fails, the others go on                     (exit 1)
        └── SinkError         the cache (Snowflake or local)

``is_outage`` tells an unreachable dependency (exit 3) from a refused query.

A run that finished with some contexts failed is not an exception: it is a result whose
outcome is ``partial`` (exit 1). The CLI maps both to exit codes in one function.
"""

from __future__ import annotations

import re
from collections.abc import Sequence


class FulcrumError(Exception):
    """Base of every error fulcrum-sync raises on purpose."""


class InputError(FulcrumError):
    """Bad usage or configuration: nothing was done (exit code 2)."""


class RefusedError(InputError):
    """The source refused our credentials or address: a setting is wrong (exit code 2).

    :param endpoint: the source's address without credentials (``http://cube:4000``).
    """

    def __init__(self, *args: object, endpoint: str | None = None) -> None:
        super().__init__(*args)
        self.endpoint = endpoint


class TenantRefusedError(InputError):
    """A tenant's own source endpoint refused its credentials or address: a setting of that
    tenant is wrong. Only its contexts fail (each names the endpoint and the fix); the run
    goes on for the others and ends ``partial`` (exit 1), or ``refused`` (exit 2) when every
    context it tried failed this way.

    :param endpoint: the endpoint's address without credentials.
    :param tenant: the tenant whose credential was refused.
    """

    def __init__(self, *args: object, endpoint: str | None = None, tenant: str = "") -> None:
        super().__init__(*args)
        self.endpoint = endpoint
        self.tenant = tenant


class StopRequested(FulcrumError):
    """A wait woke because the run was asked to stop (SIGTERM/Ctrl-C): nothing more is sent.

    Not a failure of anything: the work in flight is abandoned unrecorded, its run key is
    released for the next run, and the run ends ``interrupted`` (exit 143).
    """


class CatalogError(InputError):
    """A catalog that does not validate; ``problems`` holds every one (``field.path: what``).

    One problem is one line; several are a heading (``invalid catalog F: 3 problems:``) and
    one indented line each, the first ``shown`` of them, then how many more. ``data`` is
    the parsed YAML when there was some (so later checks can look at it too).
    """

    def __init__(
        self, origin: str, problems: Sequence[str], shown: int = 20, data: object = None
    ) -> None:
        self.origin = origin
        self.problems = list(problems)
        self.shown = shown
        self.data = data
        if len(self.problems) == 1:
            super().__init__(f"invalid catalog {origin}: {self.problems[0]}")
            return
        lines = [f"invalid catalog {origin}: {len(self.problems)} problems:"]
        lines += [f"  {p}" for p in self.problems[:shown]]
        if len(self.problems) > shown:
            lines.append(f"  (and {len(self.problems) - shown} more)")
        super().__init__("\n".join(lines))


class DependencyError(FulcrumError):
    """A dependency (source, database, cache) failed (exit code 3 if nothing could be done).

    Its message starts with the endpoint that failed, without credentials (``Cube at
    http://cube:4000/cubejs-api: ...``, ``PostgreSQL at db:5432/fulcrum: ...``, ``Snowflake
    account xy123: ...``); ``endpoint`` holds its address (``http://cube:4000/cubejs-api``,
    ``db:5432/fulcrum``, ``xy123``) when the boundary that raised it knows it.
    """

    def __init__(self, *args: object, endpoint: str | None = None) -> None:
        super().__init__(*args)
        self.endpoint = endpoint


class SourceError(DependencyError):
    """The semantic source failed or refused a query."""


class SourceDownError(SourceError):
    """The source is down: a request exhausted its retries and the breaker opened.

    No further request goes to the source in this run; the services stop the run (exit 3) and
    release the keys not started, so the next run does them.
    """


class StoreError(DependencyError):
    """The state database failed."""


class StoreBusyError(StoreError):
    """A lock was not granted or a statement was cancelled in time: the context whose
    transaction it was fails, the others go on (exit code 1)."""


class SinkError(DependencyError):
    """The cache target failed."""


class QueryRejectedError(SourceError):
    """The source refused one query as invalid (HTTP 400): that series fails (exit code 1)."""


#: How boundaries name an endpoint at the start of a dependency error's message.
_ENDPOINT = re.compile(r"\b((?:Cube|PostgreSQL|SQLite) at \S+?|Snowflake account \S+?):(?:\s|$)")


def endpoint_of(message: str | None) -> str | None:
    """The endpoint a stored error message names (``Cube at http://cube:4000``), if any.

    Stored errors (sync status rows, run records) keep the message only: the label a
    boundary puts before its message (``Cube at <url>: ...``, ``PostgreSQL at db:5432/x:
    ...``, ``Snowflake account xy123: ...``) is how they keep the endpoint, wherever a
    context's name was put before it.
    """
    found = _ENDPOINT.search(message or "")
    return found.group(1) if found else None


def is_outage(error: BaseException) -> bool:
    """True when ``error`` means a dependency is unreachable or failing, not that it refused
    one query: such failures end a run ``failed`` (exit 3) when nothing else could be done."""
    refused = (QueryRejectedError, StoreBusyError)
    return isinstance(error, DependencyError) and not isinstance(error, refused)
