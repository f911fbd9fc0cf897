"""Secrets: register the values to hide, and redact them (and anything that looks like a
credential) from text before it reaches a log, an error message or a run record.

``register_secret`` remembers a value (and its URL-encoded forms); ``redact`` masks every
registered value as ``***``, and so JWT-looking tokens, ``Bearer`` tokens, passwords in
URLs, ``password=...``-style pairs and PEM private keys, whether or not anyone registered
them. Logs, the Cube source and the Snowflake sink all use this one module.
"""

from __future__ import annotations

import functools
import os
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, unquote, urlsplit, urlunsplit

from pydantic import BaseModel, SecretBytes, SecretStr

from fulcrum_sync.domain.errors import InputError
from fulcrum_sync.jsonable import MASK

__all__ = [
    "MASK",
    "MIN_SECRET_LENGTH",
    "clear_secrets",
    "endpoint",
    "read_secret_ref",
    "redact",
    "redact_field",
    "redact_url",
    "redact_value",
    "register_secret",
    "register_secrets_from",
]


#: Secrets shorter than this are not masked by value: masking every "ab" would make the
#: logs unreadable. The pattern rules below still apply to them.
MIN_SECRET_LENGTH = 4

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
# Bumped whenever the registered secrets change: it is part of the redaction cache's key, so
# a result computed before a secret was registered is never served after.
_generation = 0
_NO_TEXT = frozenset({int, float, bool, type(None)})  # nothing in them to redact
_CACHED_UP_TO = 256  # log fields (tenant, metric, run key, ...) repeat: redact each once


def register_secret(value: str | SecretStr | SecretBytes | None) -> None:
    """Mask ``value`` (and its URL-encoded forms) as ``***`` in every log line from now on.

    :param value: the secret; ``SecretStr``/``SecretBytes`` are unwrapped. Empty values
        and values shorter than ``MIN_SECRET_LENGTH`` are ignored. For a URL with a
        password (a database URL) the password alone is registered as well; a URL without
        one (``sqlite:///fulcrum_sync.db``) is no secret and is not registered.
    """
    if value is None:
        return
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    elif isinstance(value, SecretBytes):
        value = value.get_secret_value().decode("utf-8", errors="replace")
    candidates = {value, value.strip()}
    if "://" in value:  # a URL holds a secret only if it carries a password
        password = _url_password(value)
        candidates = candidates | {password, unquote(password)} if password else set()
    forms = {form for c in candidates for form in (c, quote(c, safe=""), quote_plus(c))}
    new = {form for form in forms if len(form) >= MIN_SECRET_LENGTH}
    if not new - _secrets:
        return
    global _secrets_pattern, _generation
    with _secrets_lock:
        _secrets.update(new)
        ordered = sorted(_secrets, key=len, reverse=True)
        _secrets_pattern = re.compile("|".join(re.escape(s) for s in ordered))
        _generation += 1


#: A mounted secret larger than this is refused (a PEM key is a few kilobytes).
MAX_SECRET_FILE_BYTES = 1024 * 1024


def read_secret_ref(
    env: str | None,
    file: str | None,
    *,
    what: str,
    environ: Mapping[str, str] | None = None,
) -> SecretStr:
    """Read a secret the catalog names (a variable or a mounted file) and register it.

    :param env: the environment variable holding the secret, or None.
    :param file: the path of a mounted file holding it (trailing line breaks dropped), or
        None. Exactly one of ``env`` and ``file`` is given.
    :param what: what the secret is for the message, e.g. ``tenant acme's Cube secret``.
    :param environ: the environment to read (default ``os.environ``; tests pass their own).
    :returns: the value, registered with :func:`register_secret` so it is masked in every
        log line, error and run record from now on.
    :raises InputError: (exit 2) the variable is unset or empty, or the file is missing,
        unreadable, empty or too large: the message names the variable or file and the fix,
        never a value.
    """
    if (env is None) == (file is None):
        raise InputError(f"{what} cannot be read: name one environment variable or one file")
    if env is not None:
        source = os.environ if environ is None else environ
        value = source.get(env, "")
        if not value:
            state = "is empty" if env in source else "is not set"
            raise InputError(
                f"{what} cannot be read: environment variable {env} {state}; set it (e.g. from "
                "a Kubernetes Secret with envFrom) or change the catalog"
            )
    else:
        assert file is not None
        value = _read_secret_file(Path(file), what)
    register_secret(value)
    for line in value.splitlines()[1:] if "\n" in value else ():
        if len(line.strip()) >= 16 and not line.startswith("-----"):
            register_secret(line.strip())  # a PEM's lines, as a driver may echo one
    return SecretStr(value)


def _read_secret_file(path: Path, what: str) -> str:
    # No colon right after ``what`` or the path: "password: x" reads as a secret to redact.
    fix = "mount the secret there (a Kubernetes Secret volume) or change the catalog"
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_SECRET_FILE_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InputError(f"{what} cannot be read: file {path} ({reason}); {fix}") from None
    if len(raw) > MAX_SECRET_FILE_BYTES:
        raise InputError(f"{what} cannot be read: file {path} is over 1 MiB; is it the right file?")
    try:
        value = raw.decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError:
        raise InputError(f"{what} cannot be read: file {path} is not UTF-8 text") from None
    if not value.strip():
        raise InputError(f"{what} cannot be read: file {path} is empty; {fix}")
    return value


def register_secrets_from(model: BaseModel) -> None:
    """Register every ``SecretStr``/``SecretBytes`` field of ``model`` (e.g. the settings),
    sub-models (``settings.cube``) included, and the password of every URL setting (a Cube or
    Pushgateway URL may carry one)."""
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, SecretStr | SecretBytes):
            register_secret(value)
        elif isinstance(value, BaseModel):
            register_secrets_from(value)
        elif isinstance(value, str) and "://" in value:
            register_secret(value)  # registers the password alone; no password, nothing


def redact_url(url: str) -> str:
    """Return ``url`` with its password (if any) as ``***``: the one redaction for URLs.

    Every URL setting (database, Cube, Pushgateway, ...) is shown through this, in
    ``doctor``, logs, errors and run records. The user name stays (it helps to tell
    accounts apart); a URL that cannot be parsed is redacted as text.
    """
    text = url.strip()
    try:
        parts = urlsplit(text)
        password = parts.password
    except ValueError:
        return redact(text)
    if password is None:
        return redact(text)
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return redact(urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}")))


def endpoint(url: str) -> str:
    """Return ``url`` without any credentials (user and password) and without a query: how an
    error names the endpoint that failed (``Cube at http://cube:4000/cubejs-api: ...``)."""
    text = url.strip()
    try:
        parts = urlsplit(text)
        host = parts.netloc.rsplit("@", 1)[-1]
    except ValueError:
        return redact(text)
    return redact(urlunsplit(parts._replace(netloc=host, query="", fragment="")))


def clear_secrets() -> None:
    """Forget every registered secret (for tests)."""
    global _secrets_pattern, _generation
    with _secrets_lock:
        _secrets.clear()
        _secrets_pattern = None
        _generation += 1


def redact(text: str) -> str:
    """Return ``text`` with registered secrets and secret-looking substrings as ``***``."""
    if not text:
        return text
    if len(text) <= _CACHED_UP_TO:
        return _redact_cached(text, _generation)
    return _redact(text, _secrets_pattern)


@functools.lru_cache(maxsize=4096)
def _redact_cached(text: str, generation: int) -> str:
    # Read the pattern before checking the generation still holds: a result is cached under
    # the generation whose secrets it masked (a newer one misses and computes afresh).
    pattern = _secrets_pattern
    if generation != _generation:
        return redact(text)
    return _redact(text, pattern)


def _redact(text: str, pattern: re.Pattern[str] | None) -> str:
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


def redact_value(value: Any) -> Any:
    """Redact every string inside ``value`` (already made JSON-ready)."""
    kind = type(value)
    if kind is str:  # the common cases first, by their exact type
        return redact(value)
    if kind in _NO_TEXT:
        return value
    if kind is dict or isinstance(value, Mapping):  # a plain dict skips the ABC check
        return {redact(str(k)): redact_field(str(k), v) for k, v in value.items()}
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    return value


def redact_field(key: str, value: Any) -> Any:
    """Redact ``value``; mask it whole if ``key`` names a secret (``password``, ``token``)."""
    kind = type(value)
    if kind is str:  # the common cases first, by their exact type
        return MASK if value and _secret_field(key) else redact(value)
    if value is None:
        return None
    if kind in _NO_TEXT:
        return MASK if _secret_field(key) else value
    if value != "" and _secret_field(key):
        return MASK
    return redact_value(value)


@functools.lru_cache(maxsize=1024)
def _secret_field(key: str) -> bool:
    return _SECRET_FIELD.search(key) is not None
