"""Logging: JSON lines for machines, rich output for people, and secrets never.

``configure_logging`` installs one handler on the root logger:

- ``json``: one JSON object per line and per event, with ``time`` (ISO 8601, UTC),
  ``level``, ``event`` (the message), ``logger``, and every field passed through
  ``extra`` (``run_id``, ``run_key``, ``tenant``, ``metric``, ``grain``, ``counts``,
  ``duration``, ``error``, ...). Written to stdout by default, so that a pod's (or a
  pipe's) output is a stream of JSON lines.
- ``rich``: a rich handler for a terminal, the same fields appended as ``key=value``,
  on stderr by default.
- ``auto``: ``rich`` when the log stream is a terminal, ``json`` otherwise.

Log an event with its fields::

    log = logging.getLogger(__name__)
    log_event(log, "context synced", tenant="acme", metric="new_revenue", grain="day",
              run_key="sync:day:2025-07-01:acme::new_revenue",
              counts={"inserted": 90, "updated": 2, "unchanged": 273}, duration=1.84)

which is the same as ``log.info("context synced", extra={...})``.

Every emitted message, field and traceback goes through ``redact``: values registered
with ``secrets.register_secret`` (and their URL-encoded forms) become ``***``, and so do
JWT-looking tokens, ``Bearer`` tokens, passwords in URLs, ``password=...``-style
pairs and PEM private keys, whether or not anyone registered them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import IO, Any, Literal, get_args

from fulcrum_sync.jsonable import jsonable
from fulcrum_sync.secrets import redact, redact_field, redact_value

__all__ = [
    "ALWAYS_PRESENT",
    "EVENT_FIELDS",
    "NOISY_LOGGERS",
    "JsonFormatter",
    "KeyValueFormatter",
    "RedactingFilter",
    "bound_fields",
    "configure_logging",
    "json_logging_to_stdout",
    "log_event",
]

LogFormat = Literal["auto", "rich", "json"]


#: The fields an operator can rely on in every JSON line that concerns them.
ALWAYS_PRESENT = (
    "run_id",
    "run_key",
    "tenant",
    "metric",
    "grain",
    "counts",
    "duration",
    "error",
)
EVENT_FIELDS: tuple[str, ...] = (
    "run_id",
    "run_key",
    "tenant",
    "metric",
    "grain",
    "period",
    "pattern",
    "counts",
    "duration",
    "error",
)

#: Libraries that are chatty at INFO (each HTTP request, each Snowflake query); they log
#: at WARNING and above unless ``verbose``.
NOISY_LOGGERS: tuple[str, ...] = (
    "httpx",
    "httpcore",
    "snowflake.connector",
    "botocore",
    "urllib3",
    "alembic",
    "asyncio",
)

_LOG_RECORD_ATTRS = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None)).keys()
) | {"message", "asctime", "taskName"}

_HANDLER_MARK = "_fulcrum_sync_handler"
_REDACTED_MARK = "_fulcrum_sync_redacted"  # on a record: its fields, as the filter left them


def _extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a record carries besides a LogRecord's own, in the order they were set
    (found once: the filter keeps those it redacted on the record for the formatter)."""
    redacted: dict[str, Any] | None = vars(record).get(_REDACTED_MARK)
    if redacted is not None:
        return redacted
    return {
        key: value
        for key, value in vars(record).items()
        if key not in _LOG_RECORD_ATTRS and not key.startswith("_")
    }


# The fields of the work the current thread is doing (run, key, tenant, metric, grain). A
# ContextVar, read by the handler's filter, so every line written during that work carries
# them as fields, from any logger (tenacity's retry warnings, httpx, ours): no need to pass
# them down every call, and no second logging stack (structlog) beside the standard one.
_bound: ContextVar[Mapping[str, Any]] = ContextVar(
    "fulcrum_sync_log_fields", default=MappingProxyType({})
)


@contextlib.contextmanager
def bound_fields(**fields: Any) -> Iterator[None]:
    """Add ``fields`` (``run_id=...``, ``tenant=...``) to every log line of this block.

    Nested blocks add to (and override) the outer ones; ``None`` values are left out.
    Each thread (worker) has its own fields.
    """
    token = _bound.set({**_bound.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _bound.reset(token)


def current_fields() -> dict[str, Any]:
    """The fields :func:`bound_fields` gives this thread's log lines now (to log them from
    another thread, as a watchdog does)."""
    return dict(_bound.get())


class RedactingFilter(logging.Filter):
    """Redact a record's message, extra fields and traceback before any handler formats it.

    Fields bound with :func:`bound_fields` are added first (where the record lacks them).

    The record is changed in place (once, however many handlers see it): the message is
    formatted and redacted, ``exc_info`` is rendered to a redacted ``exc_text`` and
    cleared (so no handler renders the raw exception), and a missing ``error`` field is
    filled from the exception.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if _REDACTED_MARK in vars(record):
            return True
        for key, value in _bound.get().items():  # the work this thread is doing
            if getattr(record, key, None) is None:
                setattr(record, key, value)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the event
            message = f"{record.msg!r} % {record.args!r}"
        record.msg = redact(message)
        record.args = None
        fields = _extra_fields(record)
        for key, value in fields.items():
            fields[key] = clean = redact_field(key, jsonable(value, non_finite="text"))
            if clean is not value:
                setattr(record, key, clean)
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            if getattr(record, "error", None) is None:
                record.error = fields["error"] = redact(f"{type(exc).__name__}: {exc}")
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        setattr(record, _REDACTED_MARK, fields)
        return True


# --------------------------------------------------------------------------- formatters


#: ``json.dumps(..., ensure_ascii=False, separators=(",", ":"))``, made once, not per line.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, event, logger, then the extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        created = datetime.fromtimestamp(record.created, UTC)
        payload: dict[str, Any] = {
            "time": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
            "logger": record.name,
        }
        for key, value in _extra_fields(record).items():
            payload.setdefault(key, value)
        for key in ALWAYS_PRESENT:  # every line carries the same core keys (null if n/a)
            payload.setdefault(key, None)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            payload["traceback"] = record.exc_text
        if record.stack_info:
            payload["stack"] = record.stack_info
        if _REDACTED_MARK not in vars(record):  # else the filter did it, field by field
            payload = redact_value(jsonable(payload, non_finite="text"))
        return _ENCODER.encode(payload)


class KeyValueFormatter(logging.Formatter):
    """The message followed by the extra fields as ``key=value`` (for the rich handler)."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [record.getMessage()]
        for key, value in _extra_fields(record).items():
            plain = jsonable(value, non_finite="text")
            text = value if isinstance(value, str) else json.dumps(plain)
            parts.append(f"{key}={text}")
        line = "  ".join(parts)
        if record.exc_text:
            line = f"{line}\n{record.exc_text}"
        return redact(line)


# --------------------------------------------------------------------------- setup


def configure_logging(
    fmt: LogFormat,
    *,
    verbose: bool = False,
    stream: IO[str] | None = None,
    quiet: bool = False,
) -> str:
    """Install the fulcrum-sync log handler on the root logger; return the format in use.

    :param fmt: ``"json"``, ``"rich"`` or ``"auto"`` (rich on a terminal, else json).
    :param verbose: log DEBUG and the chatty libraries' INFO too (default: INFO, and
        WARNING for ``NOISY_LOGGERS``).
    :param stream: where to write; default stdout for json, stderr for rich. Under
        ``auto`` the stream (default stderr) decides by ``isatty()``.
    :param quiet: only WARNING and above reach the handler (a person reading a summary
        table at a terminal does not need an event per context).
    :raises ValueError: ``fmt`` is not one of the three formats.

    Calling it again replaces the handler it installed before (other handlers, such as
    pytest's, are left alone).
    """
    if fmt not in get_args(LogFormat):
        raise ValueError(f"unknown log format {fmt!r}: expected auto, rich or json")
    effective = fmt
    if fmt == "auto":
        probe = stream if stream is not None else sys.stderr
        effective = "rich" if _isatty(probe) else "json"

    handler: logging.Handler
    if effective == "json":
        handler = _JsonLinesHandler(stream if stream is not None else sys.stdout)
        handler.setFormatter(JsonFormatter())
    else:
        handler = _rich_handler(stream if stream is not None else sys.stderr, verbose=verbose)
    handler.addFilter(RedactingFilter())
    if quiet and not verbose:
        handler.setLevel(logging.WARNING)
    setattr(handler, _HANDLER_MARK, True)

    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.WARNING)
    from fulcrum_sync.libwarnings import route_warnings

    route_warnings()  # third-party warnings: logged under their module's name, no paths
    return effective


def json_logging_to_stdout() -> bool:
    """True when the handler ``configure_logging`` installed writes JSON lines to stdout."""
    return any(
        getattr(h, _HANDLER_MARK, False)
        and isinstance(h.formatter, JsonFormatter)
        and getattr(h, "stream", None) is sys.stdout
        for h in logging.getLogger().handlers
    )


def log_event(
    logger: logging.Logger,
    event: str,
    level: int = logging.INFO,
    *,
    exc_info: bool | BaseException | None = None,
    **fields: Any,
) -> None:
    """Log ``event`` with ``fields`` as structured extras (``run_key=...``, ``counts=...``).

    :param logger: the module's logger.
    :param event: a short fixed description ("context synced"), not a format string.
    :param level: a ``logging`` level.
    :param exc_info: as for ``Logger.log``; the exception also fills ``error``.
    :param fields: any of ``EVENT_FIELDS`` and more. A name that a ``LogRecord`` already
        uses (``name``, ``module``, ``process``, ...) gets a trailing underscore.
    """
    if not _written(logger, level):
        return  # no handler would write it: build no record (a terminal's quiet mode)
    extra = {
        (f"{key}_" if key in _LOG_RECORD_ATTRS else key): value for key, value in fields.items()
    }
    logger.log(level, "%s", event, extra=extra, exc_info=exc_info, stacklevel=2)


def _written(logger: logging.Logger, level: int) -> bool:
    """False when no handler on ``logger``'s way to the root takes ``level`` (as logging
    decides in ``callHandlers``); True when there is no handler at all (its last resort)."""
    if not logger.isEnabledFor(level):
        return False
    found = False
    node: logging.Logger | None = logger
    while node is not None:
        for handler in node.handlers:
            found = True
            if level >= handler.level:
                return True
        node = node.parent if node.propagate else None
    return not found


def _isatty(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _rich_handler(stream: IO[str], *, verbose: bool) -> logging.Handler:
    from rich.console import Console
    from rich.logging import RichHandler

    class _RichLines(RichHandler):
        def handleError(self, record: logging.LogRecord) -> None:
            if not _reader_gone(self, self.console.file):
                super().handleError(record)

    handler = _RichLines(
        console=Console(file=stream),
        show_path=verbose,
        rich_tracebacks=False,
        markup=False,
        log_time_format="%H:%M:%S",
    )
    handler.setFormatter(KeyValueFormatter())
    return handler


class _JsonLinesHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """JSON lines to a stream; quiet once the stream's reader has gone (``| head``)."""

    def handleError(self, record: logging.LogRecord) -> None:
        if not _reader_gone(self, self.stream):
            super().handleError(record)


def _reader_gone(handler: logging.Handler, stream: IO[str]) -> bool:
    """True when the write that failed met a closed pipe (the reader of ``fulcrum-sync ... |
    head`` exited): the handler then writes nothing more, and the stream's descriptor is
    pointed at /dev/null so that nothing buffered fails again at exit. The job goes on; its
    record still tells what it did. Any other failure is logging's to report."""
    if not isinstance(sys.exc_info()[1], BrokenPipeError):
        return False
    handler.setLevel(logging.CRITICAL + 1)
    to_devnull(stream)
    return True


def to_devnull(stream: IO[str]) -> None:
    """Point ``stream``'s descriptor at /dev/null (its reader has gone): what is still
    buffered or written later goes nowhere instead of failing again."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
