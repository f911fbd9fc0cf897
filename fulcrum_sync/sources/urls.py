"""A source endpoint's address: checked once, and named in messages without its credentials."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr

from fulcrum_sync.domain import InputError


def public_url(url: str) -> str:
    """Return ``url`` without user, password, query or fragment (``http://cube:4000/x``).

    What every message, log line and record names an endpoint by: a password in the URL
    (``http://u:p@cube``) never leaves this function.
    """
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparseable URL>"
    if ":" in host:  # IPv6
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def check_http_url(url: str, setting: str, purpose: str) -> str:
    """Return ``url`` stripped; raise InputError when it is empty or not http(s).

    :param setting: where the URL comes from (``FULCRUM_SYNC_CUBE_API_URL``), named in the error.
    :param purpose: what needs it (``FULCRUM_SYNC_SOURCE=cube needs the Cube base URL``).
    """
    url = url.strip()
    if not url:
        raise InputError(f"{setting} is not set: {purpose} (e.g. https://cube.example.com)")
    if not url.startswith(("http://", "https://")):
        raise InputError(f"{setting} must start with http:// or https://, got {public_url(url)!r}")
    try:
        urlsplit(url).port  # noqa: B018  (raises on a bad port)
    except ValueError:
        raise InputError(f"{setting} has a bad port: {public_url(url)!r}") from None
    return url


def check_secret(secret: SecretStr, setting: str, purpose: str) -> SecretStr:
    """Return ``secret``; raise InputError (naming ``setting``, never the value) when empty."""
    if not secret.get_secret_value():
        raise InputError(f"{setting} is not set: {purpose}")
    return secret
