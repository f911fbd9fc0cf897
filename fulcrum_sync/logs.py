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
with ``register_secret`` (and their URL-encoded forms) become ``***``, and so do
JWT-looking tokens, ``Bearer`` tokens, passwords in URLs, ``password=...``-style
pairs and PEM private keys, whether or not anyone registered them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
import sys
import threading
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from typing import IO, Any, Literal, get_args
from urllib.parse import quote, quote_plus, unquote, urlsplit

from pydantic import BaseModel, SecretBytes, SecretStr

LogFormat = Literal["auto", "rich", "json"]

MASK = "***"

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

#: Secrets shorter than this are not masked by value: masking every "ab" would make the
#: logs unreadable. The pattern rules below still apply to them.
MIN_SECRET_LENGTH = 4

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
_REDACTED_MARK = "_fulcrum_sync_redacted"

# --------------------------------------------------------------------------- redaction

_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]+")
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)[^\s@]+(?=@)")
_KEY_VALUE = re.compile(
    r"(?i)\b(?P<key>password|passwd|pwd|secret|api_secret|api_key|apikey|token|"
    r"access_token|private_key|passphrase)(?P<sep>[\"']?\s*[=:]\s*)"
    r"(?P<value>\"[^\"]*\"|'[^']*'|[^\s,;&\"']+)"
)
#: A field whose name looks like this is masked whole, whatever its value.
_SECRET_FIELD = re.compile(
    r"(?i)(password|passwd|secret|token|api_?key|private_?key|passphrase|authorization|"
    r"credential)"
)
_PEM = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)",
    re.DOTALL,
)

_secrets: set[str] = set()
_secrets_pattern: re.Pattern[str] | None = None
_secrets_lock = threading.Lock()


def register_secret(value: str | SecretStr | SecretBytes | None) -> None:
    """Mask ``value`` (and its URL-encoded forms) as ``***`` in every log line from now on.

    :param value: the secret; ``SecretStr``/``SecretBytes`` are unwrapped. Empty values
        and values shorter than ``MIN_SECRET_LENGTH`` are ignored. For a URL with a
        password (a database URL) the password alone is registered as well.
    """
    if value is None:
        return
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    elif isinstance(value, SecretBytes):
        value = value.get_secret_value().decode("utf-8", errors="replace")
    candidates = {value, value.strip()}
    password = _url_password(value)
    if password:
        candidates |= {password, unquote(password)}
    forms = {form for c in candidates for form in (c, quote(c, safe=""), quote_plus(c))}
    new = {form for form in forms if len(form) >= MIN_SECRET_LENGTH}
    if not new - _secrets:
        return
    global _secrets_pattern
    with _secrets_lock:
        _secrets.update(new)
        ordered = sorted(_secrets, key=len, reverse=True)
        _secrets_pattern = re.compile("|".join(re.escape(s) for s in ordered))


def register_secrets_from(model: BaseModel) -> None:
    """Register every ``SecretStr``/``SecretBytes`` field of ``model`` (e.g. the settings)."""
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, SecretStr | SecretBytes):
            register_secret(value)


def clear_secrets() -> None:
    """Forget every registered secret (for tests)."""
    global _secrets_pattern
    with _secrets_lock:
        _secrets.clear()
        _secrets_pattern = None


def redact(text: str) -> str:
    """Return ``text`` with registered secrets and secret-looking substrings as ``***``."""
    if not text:
        return text
    pattern = _secrets_pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    text = _PEM.sub(MASK, text)
    text = _JWT.sub(MASK, text)
    text = _BEARER.sub(lambda m: m.group(1) + MASK, text)
    text = _URL_PASSWORD.sub(lambda m: m.group("head") + MASK, text)
    return _KEY_VALUE.sub(lambda m: m.group("key") + m.group("sep") + MASK, text)


def _url_password(value: str) -> str | None:
    if "://" not in value:
        return None
    try:
        return urlsplit(value.strip()).password
    except ValueError:
        return None


def _redact_value(value: Any) -> Any:
    """Redact every string inside ``value`` (already made JSON-friendly)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {redact(str(k)): _redact_field(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(v) for v in value]
    return value


def _redact_field(key: str, value: Any) -> Any:
    """Redact ``value``; mask it whole if ``key`` names a secret (``password``, ``token``)."""
    if value is not None and value != "" and _SECRET_FIELD.search(key):
        return MASK
    return _redact_value(value)


def _jsonable(value: Any) -> Any:
    """Turn ``value`` into something ``json.dumps`` takes: the same for JSON types."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, SecretStr | SecretBytes):
        return MASK
    if isinstance(value, Enum):
        return _jsonable(value.value)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return round(value.total_seconds(), 3)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, BaseModel):
        return _jsonable(value.model_dump(mode="json"))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    return str(value)


def _extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {
        key: value
        for key, value in vars(record).items()
        if key not in _LOG_RECORD_ATTRS and not key.startswith("_")
    }


class RedactingFilter(logging.Filter):
    """Redact a record's message, extra fields and traceback before any handler formats it.

    The record is changed in place (once, however many handlers see it): the message is
    formatted and redacted, ``exc_info`` is rendered to a redacted ``exc_text`` and
    cleared (so no handler renders the raw exception), and a missing ``error`` field is
    filled from the exception.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _REDACTED_MARK, False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the event
            message = f"{record.msg!r} % {record.args!r}"
        record.msg = redact(message)
        record.args = None
        for key, value in _extra_fields(record).items():
            setattr(record, key, _redact_field(key, _jsonable(value)))
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            if getattr(record, "error", None) is None:
                record.error = redact(f"{type(exc).__name__}: {exc}")
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        setattr(record, _REDACTED_MARK, True)
        return True


# --------------------------------------------------------------------------- formatters


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
        payload = _redact_value(_jsonable(payload))
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


class KeyValueFormatter(logging.Formatter):
    """The message followed by the extra fields as ``key=value`` (for the rich handler)."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [record.getMessage()]
        for key, value in _extra_fields(record).items():
            text = value if isinstance(value, str) else json.dumps(_jsonable(value))
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
        handler = logging.StreamHandler(stream if stream is not None else sys.stdout)
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
    logging.captureWarnings(True)
    return effective


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
    extra = {
        (f"{key}_" if key in _LOG_RECORD_ATTRS else key): value for key, value in fields.items()
    }
    logger.log(level, "%s", event, extra=extra, exc_info=exc_info, stacklevel=2)


def _isatty(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _rich_handler(stream: IO[str], *, verbose: bool) -> logging.Handler:
    from rich.console import Console
    from rich.logging import RichHandler

    handler = RichHandler(
        console=Console(file=stream),
        show_path=verbose,
        rich_tracebacks=False,
        markup=False,
        log_time_format="%H:%M:%S",
    )
    handler.setFormatter(KeyValueFormatter())
    return handler
