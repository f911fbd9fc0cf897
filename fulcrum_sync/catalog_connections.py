"""A tenant's own connections in the catalog: its Cube (``cube:``) and its cache (``cache:``).

The catalog never holds a secret, only the name of where to read one: an environment
variable (``*_env``) or a mounted file (``*_file``)::

    cube:
      url: https://cube.acme.example.com
      secret_env: ACME_CUBE_SECRET        # or secret_file / token_env / token_file
    cache:
      account: acme-xy12345
      user: FULCRUM_LOADER
      database: ACME
      schema: CACHE
      warehouse: LOAD_XS                  # optional
      role: LOADER                        # optional
      password_env: ACME_SF_PASSWORD      # or password_file / private_key_file /
                                          # private_key_env (+ passphrase_env / _file)

A field that holds a secret itself (``secret:``, ``password:``, ``token:``,
``private_key:``, ``passphrase:`` ...) is refused naming the field, never its value.
The values are read when a run needs them, by :func:`fulcrum_sync.secrets.read_secret_ref`.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from fulcrum_sync.secrets import read_secret_ref

ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
MAX_PATH = 1024
# A Snowflake account (``org-account``, ``xy12345.eu-central-1``) and the identifiers a
# destination names; the sink quotes them, this only keeps the catalog sane.
ACCOUNT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,254}$"
SNOWFLAKE_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_$]{0,254}$"

#: A key whose name looks like one of these, other than the ``*_env``/``*_file`` references
#: a block defines, holds a secret inline: refused.
_INLINE_SECRET = re.compile(
    r"(?i)(secret|password|passwd|pwd|token|private_?key|passphrase|api_?key|credential)"
)
_REFERENCE = re.compile(r"(?i)_(env|file)$")
CUBE_AUTH_FIELDS = ("secret_env", "secret_file", "token_env", "token_file")
CACHE_AUTH_FIELDS = ("password_env", "password_file", "private_key_file", "private_key_env")


def inline_secret_problem(data: Any, block: str) -> None:
    """Raise ValueError naming the first key of mapping ``data`` that holds a secret inline.

    :param block: where the mapping sits (``cube``, ``cache`` or ``tenant``), for the message.
    The message names the key and the references to use instead, never the value.
    """
    if not isinstance(data, dict):
        return
    for key in data:
        name = str(key)
        if _INLINE_SECRET.search(name) and not _REFERENCE.search(name):
            raise ValueError(
                f"{block}.{name} holds a secret in the catalog, which is refused (its value "
                f"is not shown): name where to read it instead, {name}_env: VARIABLE or "
                f"{name}_file: /path/of/a/mounted/secret"
            )


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _env_name(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(ENV_NAME_PATTERN, value):
        raise ValueError(
            "expected the name of an environment variable (letters, digits and '_', not "
            "starting with a digit)"
        )
    return value


def _file_path(value: str | None) -> str | None:
    if value is not None and (not value.strip() or len(value) > MAX_PATH or "\0" in value):
        raise ValueError(f"expected the path of a mounted file (at most {MAX_PATH} characters)")
    return value


def _exactly_one(model: BaseModel, fields: tuple[str, ...], block: str) -> str:
    given = [f for f in fields if getattr(model, f) is not None]
    if len(given) != 1:
        found = f"got {', '.join(given)}" if given else "got none"
        raise ValueError(f"{block} needs exactly one of {', '.join(fields)} ({found})")
    return given[0]


class CubeConnection(_Block):
    """A tenant's own Cube: its URL and where to read its signing secret or fixed token.

    Exactly one of ``secret_env``, ``secret_file`` (an HS256 signing secret: the tool signs
    a JWT per request) or ``token_env``, ``token_file`` (a token sent as it is).
    """

    url: str = Field(min_length=1, max_length=2048)
    secret_env: str | None = None
    secret_file: str | None = None
    token_env: str | None = None
    token_file: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_inline_secret(cls, data: Any) -> Any:
        inline_secret_problem(data, "cube")
        return data

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.fullmatch(r"https?://[^\s/@]+(/\S*)?", value.strip()):
            raise ValueError(
                "expected an http(s) URL without credentials, e.g. https://cube.example.com"
            )
        return value.strip().rstrip("/")

    @field_validator("secret_env", "token_env")
    @classmethod
    def _env(cls, value: str | None) -> str | None:
        return _env_name(value)

    @field_validator("secret_file", "token_file")
    @classmethod
    def _file(cls, value: str | None) -> str | None:
        return _file_path(value)

    @model_validator(mode="after")
    def _one_auth(self) -> CubeConnection:
        _exactly_one(self, CUBE_AUTH_FIELDS, "cube")
        return self

    @property
    def auth(self) -> Literal["secret", "token"]:
        """``secret`` (sign a JWT with it) or ``token`` (send it as it is)."""
        return "secret" if self.secret_env or self.secret_file else "token"

    @property
    def reference(self) -> str:
        """Where the credential is read, e.g. ``secret_env ACME_CUBE_SECRET`` (no value)."""
        name = _exactly_one(self, CUBE_AUTH_FIELDS, "cube")
        return f"{name} {getattr(self, name)}"

    def read_credential(self, tenant: str) -> SecretStr:
        """Read the signing secret or token; raise InputError naming the variable or file."""
        if self.auth == "secret":
            env, file = self.secret_env, self.secret_file
        else:
            env, file = self.token_env, self.token_file
        return read_secret_ref(env, file, what=f"tenant {tenant}'s Cube {self.auth}")


class CacheDestination(_Block):
    """A tenant's own Snowflake cache: where its tables go and how to log in.

    Exactly one of ``password_env``, ``password_file``, ``private_key_file`` (a mounted PEM
    file) or ``private_key_env`` (PEM text in a variable); an encrypted key's passphrase in
    ``passphrase_env`` or ``passphrase_file``.
    """

    account: str = Field(pattern=ACCOUNT_PATTERN)
    user: str = Field(min_length=1, max_length=255)
    database: str = Field(pattern=SNOWFLAKE_NAME_PATTERN)
    schema_: str = Field(alias="schema", pattern=SNOWFLAKE_NAME_PATTERN)
    warehouse: str | None = Field(default=None, pattern=SNOWFLAKE_NAME_PATTERN)
    role: str | None = Field(default=None, pattern=SNOWFLAKE_NAME_PATTERN)
    password_env: str | None = None
    password_file: str | None = None
    private_key_file: str | None = None
    private_key_env: str | None = None
    passphrase_env: str | None = None
    passphrase_file: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _no_inline_secret(cls, data: Any) -> Any:
        inline_secret_problem(data, "cache")
        return data

    @field_validator("password_env", "private_key_env", "passphrase_env")
    @classmethod
    def _env(cls, value: str | None) -> str | None:
        return _env_name(value)

    @field_validator("password_file", "private_key_file", "passphrase_file")
    @classmethod
    def _file(cls, value: str | None) -> str | None:
        return _file_path(value)

    @model_validator(mode="after")
    def _one_auth(self) -> CacheDestination:
        name = _exactly_one(self, CACHE_AUTH_FIELDS, "cache")
        has_passphrase = self.passphrase_env is not None or self.passphrase_file is not None
        if has_passphrase and not name.startswith("private_key"):
            raise ValueError("cache: a passphrase goes with private_key_file or private_key_env")
        if self.passphrase_env is not None and self.passphrase_file is not None:
            raise ValueError("cache: give passphrase_env or passphrase_file, not both")
        return self

    @property
    def schema_name(self) -> str:
        """The schema (``schema`` in the catalog)."""
        return self.schema_

    @property
    def auth(self) -> Literal["password", "key pair"]:
        return "password" if self.password_env or self.password_file else "key pair"

    @property
    def references(self) -> list[str]:
        """Where the credentials are read, e.g. ``['password_env ACME_SF_PASSWORD']``."""
        names = (*CACHE_AUTH_FIELDS, "passphrase_env", "passphrase_file")
        return [f"{n} {getattr(self, n)}" for n in names if getattr(self, n) is not None]

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What one connection serves: account, user, role and warehouse (upper-cased)."""
        return (
            self.account.lower(),
            self.user.upper(),
            (self.role or "").upper(),
            (self.warehouse or "").upper(),
        )
