"""Snowflake connection settings: from ``FULCRUM_SYNC_SNOWFLAKE_*`` or a tenant's ``cache:``.

Both paths end in one validated :class:`SnowflakeConfig`; secrets are read (a setting, a
variable or a mounted file), registered for redaction and kept out of the repr.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fulcrum_sync.domain import InputError
from fulcrum_sync.secrets import read_secret_ref, register_secret
from fulcrum_sync.sinks.identifiers import NAME_RE

if TYPE_CHECKING:
    from fulcrum_sync.catalog_connections import CacheDestination
    from fulcrum_sync.config import Settings

QUERY_TAG = "fulcrum-sync cache-load"
ENV = "FULCRUM_SYNC_SNOWFLAKE_"


def load_private_key(pem: bytes, passphrase: str | None, where: str = f"{ENV}PRIVATE_KEY") -> bytes:
    """Return a PEM private key (encrypted or not) as unencrypted PKCS#8 DER bytes.

    :param where: the passphrase's setting or variable, named in the message.
    Raises InputError, naming the setting but never the key or passphrase, when the key
    cannot be read, is encrypted without a passphrase or the passphrase is wrong.
    """
    from cryptography.hazmat.primitives import serialization

    secret = passphrase.encode() if passphrase else None
    try:
        key = serialization.load_pem_private_key(pem, password=secret)
    except TypeError as exc:  # encrypted without a passphrase, or a passphrase but not encrypted
        hint = str(exc).splitlines()[0] if str(exc) else "passphrase mismatch"
        raise InputError(f"cannot load the Snowflake private key: {hint} (check {where})") from None
    except ValueError:
        raise InputError(
            "cannot load the Snowflake private key: not a PEM private key, or the passphrase "
            f"({where}) is wrong"
        ) from None
    return key.private_bytes(
        encoding=serialization.Encoding.DER,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )


def _identifier(value: str, setting: str, *, upper: bool = True) -> str:
    text = value.strip()
    if not NAME_RE.fullmatch(text) or len(text) > 255:
        raise InputError(f"invalid {setting} {value!r}: only letters, digits, '_' and '$' allowed")
    return text.upper() if upper else text


def _register(password: str, passphrase: str, key_text: str, pem: bytes | None) -> tuple[str, ...]:
    secrets = [password, passphrase, key_text]
    if pem is not None:
        secrets += [ln for ln in pem.decode(errors="replace").splitlines() if len(ln) >= 16]
    for secret in secrets:
        register_secret(secret)  # masked in every log line from now on
    return tuple(s for s in secrets if s)


@dataclass(frozen=True, slots=True)
class SnowflakeConfig:
    """Connection settings, validated; secrets are excluded from the repr.

    ``hint`` names where the credentials came from (settings or a tenant's variables), for
    the message when Snowflake refuses them.
    """

    account: str
    user: str
    database: str
    schema: str
    warehouse: str = ""
    role: str = ""
    password: str = field(default="", repr=False)
    private_key: bytes | None = field(default=None, repr=False)  # PKCS#8 DER
    secrets: tuple[str, ...] = field(default=(), repr=False)  # texts masked in errors
    hint: str = field(default=f"{ENV}PASSWORD or {ENV}PRIVATE_KEY*", repr=False)

    @property
    def auth(self) -> str:
        return "key pair" if self.private_key else "password"

    @property
    def connection_key(self) -> tuple[str, str, str, str]:
        """What one connection serves: account, user, role and warehouse."""
        return (self.account.lower(), self.user.upper(), self.role.upper(), self.warehouse.upper())

    @property
    def destination(self) -> str:
        """The connection's name in messages: ``snowflake account A as U (role R, ...)``."""
        extra = [f"role {self.role}"] if self.role else []
        extra += [f"warehouse {self.warehouse}"] if self.warehouse else []
        more = f" ({', '.join(extra)})" if extra else ""
        return f"snowflake account {self.account} as {self.user}{more}"

    @classmethod
    def from_settings(cls, settings: Settings) -> SnowflakeConfig:
        """Build the config from ``FULCRUM_SYNC_SNOWFLAKE_*``; raise InputError when unusable.

        Key pair (a key file path or PEM text, optional passphrase) wins over a password.
        """
        account, user = settings.snowflake_account.strip(), settings.snowflake_user.strip()
        missing = [f"{ENV}{n}" for n, v in (("ACCOUNT", account), ("USER", user)) if not v]
        if missing:
            raise InputError(f"the snowflake target needs {' and '.join(missing)}")
        password = settings.snowflake_password.get_secret_value()
        passphrase = settings.snowflake_private_key_passphrase.get_secret_value()
        key_path = settings.snowflake_private_key_path.strip()
        key_text = settings.snowflake_private_key.get_secret_value().strip()
        if key_path and key_text:
            raise InputError(f"set {ENV}PRIVATE_KEY_PATH or {ENV}PRIVATE_KEY, not both")
        pem: bytes | None = None
        if key_path:
            try:
                pem = Path(key_path).expanduser().read_bytes()
            except OSError as exc:
                raise InputError(
                    f"cannot read {ENV}PRIVATE_KEY_PATH {key_path}: {exc.strerror}"
                ) from None
        elif key_text:
            pem = key_text.replace("\\n", "\n").encode()
        if pem is None and not password:
            raise InputError(
                f"no Snowflake credentials: set {ENV}PASSWORD, or {ENV}PRIVATE_KEY_PATH or "
                f"{ENV}PRIVATE_KEY (with {ENV}PRIVATE_KEY_PASSPHRASE if it is encrypted)"
            )
        where = f"{ENV}PRIVATE_KEY_PASSPHRASE"
        private_key = load_private_key(pem, passphrase or None, where) if pem else None
        return cls(
            account=account,
            user=user,
            database=_identifier(settings.snowflake_database, f"{ENV}DATABASE"),
            schema=_identifier(settings.snowflake_schema, f"{ENV}SCHEMA"),
            warehouse=_optional(settings.snowflake_warehouse, f"{ENV}WAREHOUSE"),
            role=_optional(settings.snowflake_role, f"{ENV}ROLE"),
            password="" if private_key else password,
            private_key=private_key,
            secrets=_register(password, passphrase, key_text, pem),
            hint=(f"{ENV}PRIVATE_KEY*" if private_key else f"{ENV}PASSWORD"),
        )

    @classmethod
    def from_destination(
        cls, dest: CacheDestination, tenant: str, environ: Mapping[str, str] | None = None
    ) -> SnowflakeConfig:
        """Build the config of a tenant's own ``cache:`` block, reading its secrets now.

        Raises InputError naming the tenant and the variable or file that is missing, or the
        key that cannot be read; never a value.
        """
        what = f"tenant {tenant}'s Snowflake"
        password = passphrase = key_text = ""
        pem: bytes | None = None
        if dest.auth == "password":
            ref = (dest.password_env, dest.password_file)
            secret = read_secret_ref(*ref, what=f"{what} password", environ=environ)
            password = secret.get_secret_value()
            hint = dest.references[0]
        else:
            ref = (dest.private_key_env, dest.private_key_file)
            secret = read_secret_ref(*ref, what=f"{what} private key", environ=environ)
            key_text = secret.get_secret_value().strip()
            pem = key_text.replace("\\n", "\n").encode()
            if dest.passphrase_env or dest.passphrase_file:
                ref = (dest.passphrase_env, dest.passphrase_file)
                secret = read_secret_ref(*ref, what=f"{what} key passphrase", environ=environ)
                passphrase = secret.get_secret_value()
            hint = " with ".join(dest.references)
        where = dest.references[-1] if passphrase else f"tenant {tenant}'s cache.passphrase_env"
        private_key = load_private_key(pem, passphrase or None, where) if pem else None
        return cls(
            account=dest.account,
            user=dest.user,
            database=_identifier(dest.database, f"tenant {tenant}'s cache.database"),
            schema=_identifier(dest.schema_name, f"tenant {tenant}'s cache.schema"),
            warehouse=dest.warehouse or "",
            role=dest.role or "",
            password=password,
            private_key=private_key,
            secrets=_register(password, passphrase, key_text, pem),
            hint=f"tenant {tenant}'s {hint}",
        )

    def connect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``snowflake.connector.connect`` (hold secrets: never log)."""
        kwargs: dict[str, Any] = {
            "account": self.account,
            "user": self.user,
            "database": self.database,
            "schema": self.schema,
            "login_timeout": 60,
            "network_timeout": 600,
            "session_parameters": {"QUERY_TAG": QUERY_TAG},
        }
        if self.warehouse:
            kwargs["warehouse"] = self.warehouse
        if self.role:
            kwargs["role"] = self.role
        if self.private_key:
            kwargs["authenticator"] = "SNOWFLAKE_JWT"
            kwargs["private_key"] = self.private_key
        else:
            kwargs["password"] = self.password
        return kwargs

    def scrub(self, text: str) -> str:
        """Return ``text`` with every secret replaced by ``***``."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


def _optional(value: str, setting: str) -> str:
    return _identifier(value, setting, upper=False) if value.strip() else ""
