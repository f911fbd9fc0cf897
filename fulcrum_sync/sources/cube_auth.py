"""Cube's per-tenant credentials: JWTs signed with the API secret, cached until near expiry;
a refused tenant remembered so it is checked once; a tenant's first request sent alone."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import jwt
from pydantic import SecretStr

from fulcrum_sync.domain import RefusedError


class TenantAuth:
    """The JWTs of every tenant one Cube source talks for, and what Cube said of them.

    :param secret: the API secret that signs the HS256 tokens.
    :param tenant_claim: the claim that carries the tenant identifier.
    :param ttl_seconds: a token's lifetime; a cached one is reused until near expiry.
    :param clock: returns epoch seconds (injected by tests).
    """

    def __init__(
        self,
        secret: SecretStr,
        *,
        tenant_claim: str,
        ttl_seconds: int,
        clock: Callable[[], float],
    ) -> None:
        self._secret = secret
        self.tenant_claim = tenant_claim
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._tokens: dict[tuple[str, int | None], tuple[str, float]] = {}
        self._refused: dict[str, RefusedError] = {}  # tenant -> why Cube refused it
        # tenant -> (its own signing secret or fixed token, "secret" | "token", where it is read)
        self._own: dict[str, tuple[SecretStr, str, str]] = {}
        self._decided: dict[str, threading.Event] = {}  # set once Cube answered a tenant
        self._lock = threading.Lock()

    def use(self, tenant: str, credential: SecretStr, kind: str, where: str) -> None:
        """Authenticate ``tenant`` with its own credential: ``kind`` ``secret`` signs its JWTs
        with it, ``token`` sends it as it is; ``where`` names its variable or file."""
        with self._lock:
            self._own[tenant] = (credential, kind, where)
            self._tokens = {k: v for k, v in self._tokens.items() if k[0] != tenant}

    def hint(self, tenant: str, default: str) -> str:
        """Where ``tenant``'s credential comes from (its variable or file, else ``default``)."""
        own = self._own.get(tenant)
        return f"tenant {tenant}'s cube.{own[2]}" if own else default

    def token(self, tenant: str, tenant_id: int | None) -> str:
        """Return a JWT for the tenant, reusing a cached one until it is near expiry (or the
        tenant's own fixed token)."""
        own = self._own.get(tenant)
        if own is not None and own[1] == "token":
            return own[0].get_secret_value()
        secret = own[0] if own is not None else self._secret
        now = self._clock()
        margin = min(30.0, self.ttl_seconds / 5)
        with self._lock:
            cached = self._tokens.get((tenant, tenant_id))
            if cached is not None and cached[1] - now > margin:
                return cached[0]
            claims: dict[str, Any] = {"tenant_identifier": tenant}
            if tenant_id is not None:
                claims["tenant_numeric_id"] = tenant_id
            claims[self.tenant_claim] = tenant
            claims["iat"] = int(now)
            claims["exp"] = int(now) + self.ttl_seconds
            token = jwt.encode(claims, secret.get_secret_value(), algorithm="HS256")
            self._tokens[(tenant, tenant_id)] = (token, float(claims["exp"]))
            return token

    @contextlib.contextmanager
    def first_contact(self, tenant: str) -> Iterator[None]:
        """A tenant's first request goes alone: the others wait until Cube answers it.

        So a refused token is sent once per tenant, not once per worker. The others go on
        as soon as any answer (or the first request's failure) arrives.
        """
        with self._lock:
            decided = self._decided.get(tenant)
            leader = decided is None
            if leader:
                decided = self._decided[tenant] = threading.Event()
        assert decided is not None
        if not leader:
            decided.wait()
            yield
            return
        try:
            yield
        finally:
            decided.set()

    def check(self, tenant: str, what: str) -> None:
        """Raise RefusedError, sending nothing, when Cube already refused ``tenant``."""
        refused = self._refused.get(tenant)
        if refused is not None:
            raise RefusedError(f"{what}: not sent: {refused}")

    def answered(self, tenant: str, tenant_id: int | None, status: int) -> None:
        """Note Cube's answer: 401/403 forgets the token, anything else lets the others go."""
        if status in (401, 403):
            with self._lock:
                self._tokens.pop((tenant, tenant_id), None)
        else:
            self._release(tenant)

    def refuse(self, tenant: str, error: RefusedError) -> RefusedError:
        """Remember that Cube refused ``tenant``; return ``error`` to raise."""
        with self._lock:
            self._refused[tenant] = error
        self._release(tenant)
        return error

    def _release(self, tenant: str) -> None:
        with self._lock:
            decided = self._decided.setdefault(tenant, threading.Event())
        decided.set()

    def clear(self) -> None:
        """Forget every cached token."""
        with self._lock:
            self._tokens.clear()
