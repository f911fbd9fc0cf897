"""One connection to a Snowflake destination (:class:`SnowflakeLink`), shared by the sink
and its batches, and :func:`translate`: every connector error turned into one SinkError
(RefusedError when Snowflake refuses the credentials), with any secret masked."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

from fulcrum_sync.domain import FulcrumError, RefusedError, SinkError
from fulcrum_sync.sinks.snowflake.config import SnowflakeConfig

log = logging.getLogger(__name__)


#: Connector error numbers that mean Snowflake refused who we are (a wrong password or key,
#: a locked or disabled user, a role not granted): configuration, never retried (exit 2).
REFUSED_ERRNOS = frozenset({390100, 390101, 390102, 390144, 390186, 390189, 390201})
_REFUSED_TEXT = ("incorrect username or password", "jwt token is invalid")


def is_refused(exc: BaseException) -> bool:
    """True when a connector error says Snowflake refused our credentials."""
    errno = getattr(exc, "errno", None)
    if isinstance(errno, int) and errno in REFUSED_ERRNOS:
        return True
    return any(text in str(exc).lower() for text in _REFUSED_TEXT)


def _default_connect(**kwargs: Any) -> Any:
    import snowflake.connector  # lazy: the connector takes a while to import

    return snowflake.connector.connect(**kwargs)


class SnowflakeLink:
    """One connection to a Snowflake destination (account, user, role, warehouse), opened on
    first use and shared by the sinks of every tenant that loads there.

    :param config: the settings it connects with (the first tenant's, for a shared link).
    :param connect: builds a DB-API connection from ``config.connect_kwargs()``.
    """

    def __init__(self, config: SnowflakeConfig, connect: Callable[..., Any] | None = None) -> None:
        self.config = config
        self._connect = connect or _default_connect
        self.conn: Any = None

    @property
    def destination(self) -> str:
        return self.config.destination

    def open(self) -> None:
        """Connect once; raise RefusedError (credentials refused) or SinkError."""
        if self.conn is not None:
            return
        cfg = self.config
        log.debug("connecting to %s (%s)", cfg.destination, cfg.auth)
        with translate(cfg, f"connect as {cfg.user}", True):
            self.conn = self._connect(**cfg.connect_kwargs())

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()


@contextlib.contextmanager
def translate(config: SnowflakeConfig, action: str, connecting: bool = False) -> Iterator[None]:
    """Turn every error of the driver stack into SinkError (RefusedError for refused
    credentials while connecting), with secrets masked.

    Anything raised under the connector (its errors, network and pyarrow errors, and what
    fakesnow lets through) is a failure of the target, so all of it is translated here.
    """
    try:
        yield
    except FulcrumError:
        raise
    except Exception as exc:
        text = str(exc).strip()
        first = text.splitlines()[0] if text else ""
        detail = config.scrub(first or type(exc).__name__)
        where = f"Snowflake account {config.account}"
        error: FulcrumError
        if connecting and is_refused(exc):
            error = RefusedError(
                f"{where}: the credentials were refused: cannot {action}: {detail} "
                f"(check {config.hint})"
            )
        else:
            error = SinkError(f"{where}: cannot {action}: {detail}", endpoint=config.account)
        if config.scrub(text) != text:
            raise error from None  # the driver echoed a secret: do not chain it
        raise error from exc
