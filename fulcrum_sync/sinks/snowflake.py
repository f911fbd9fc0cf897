"""The Snowflake cache target, on snowflake-connector-python (imported only when used).

A load replaces a table's contents atomically::

    CREATE TABLE IF NOT EXISTS "DB"."SCHEMA"."CACHE_..."   -- first load only
    CREATE OR REPLACE TEMPORARY TABLE "CACHE_...__STAGE"   -- this session only
    write_pandas(...) into the stage                        -- PUT + COPY INTO
    BEGIN; DELETE FROM target; INSERT INTO target SELECT ... FROM stage; COMMIT
    DROP TABLE IF EXISTS stage

The DELETE and the INSERT commit together, so readers see the old rows until the commit and
the new ones after it. Unlike ``ALTER TABLE ... SWAP WITH`` or ``CREATE OR REPLACE ... CLONE``
this keeps the table itself (its grants, comments and Time Travel history), and it is what
fakesnow, which the tests run on, supports. ``write_pandas`` runs DDL (a temporary stage and
file format), which would commit an open transaction: that is why it loads the stage first.

Credentials never leave this module: the config's repr hides them, and every connector error
is turned into one SinkError at :meth:`SnowflakeSink._translate` with any secret masked.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fulcrum_sync.domain import FulcrumError, Grain, InputError, SinkError
from fulcrum_sync.secrets import register_secret
from fulcrum_sync.sinks.base import FRAME_COLUMNS, CacheRow, LoadStats, estimate_bytes
from fulcrum_sync.sinks.identifiers import NAME_RE, CacheTable, cache_table_name, quote

if TYPE_CHECKING:
    import pandas as pd

    from fulcrum_sync.config import Settings

log = logging.getLogger(__name__)

STAGE_SUFFIX = "__STAGE"
QUERY_TAG = "fulcrum-sync cache-load"
_ENV = "FULCRUM_SYNC_SNOWFLAKE_"
_COLUMNS_DDL = (
    '"DATE" DATE NOT NULL, "DIMENSION_NAME" VARCHAR, "DIMENSION_SLICE" VARCHAR, '
    '"VALUE" FLOAT NOT NULL, "GRAIN" VARCHAR NOT NULL, "LOADED_AT" TIMESTAMP_NTZ NOT NULL'
)
_STAGE_DDL = '"DATE" DATE, "DIMENSION_NAME" VARCHAR, "DIMENSION_SLICE" VARCHAR, "VALUE" FLOAT'
_FRAME_COLS = ", ".join(f'"{c.upper()}"' for c in FRAME_COLUMNS)


def load_private_key(pem: bytes, passphrase: str | None) -> bytes:
    """Return a PEM private key (encrypted or not) as unencrypted PKCS#8 DER bytes.

    Raises InputError, naming the setting but never the key or passphrase, when the key
    cannot be read, is encrypted without a passphrase or the passphrase is wrong.
    """
    from cryptography.hazmat.primitives import serialization

    secret = passphrase.encode() if passphrase else None
    try:
        key = serialization.load_pem_private_key(pem, password=secret)
    except TypeError as exc:  # encrypted without a passphrase, or a passphrase but not encrypted
        hint = str(exc).splitlines()[0] if str(exc) else "passphrase mismatch"
        raise InputError(
            f"cannot load the Snowflake private key: {hint} (check {_ENV}PRIVATE_KEY_PASSPHRASE)"
        ) from None
    except ValueError:
        raise InputError(
            "cannot load the Snowflake private key: not a PEM private key, or the passphrase "
            f"({_ENV}PRIVATE_KEY_PASSPHRASE) is wrong"
        ) from None
    return key.private_bytes(
        encoding=serialization.Encoding.DER,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )


def _identifier(value: str, setting: str, *, upper: bool = True) -> str:
    text = value.strip()
    if not NAME_RE.fullmatch(text) or len(text) > 255:
        raise InputError(
            f"invalid {_ENV}{setting} {value!r}: only letters, digits, '_' and '$' allowed"
        )
    return text.upper() if upper else text


@dataclass(frozen=True, slots=True)
class SnowflakeConfig:
    """Connection settings, validated; secrets are excluded from the repr."""

    account: str
    user: str
    database: str
    schema: str
    warehouse: str = ""
    role: str = ""
    password: str = field(default="", repr=False)
    private_key: bytes | None = field(default=None, repr=False)  # PKCS#8 DER
    secrets: tuple[str, ...] = field(default=(), repr=False)  # texts masked in errors

    @property
    def auth(self) -> str:
        return "key pair" if self.private_key else "password"

    @classmethod
    def from_settings(cls, settings: Settings) -> SnowflakeConfig:
        """Build the config from ``FULCRUM_SYNC_SNOWFLAKE_*``; raise InputError when unusable.

        Key pair (a key file path or PEM text, optional passphrase) wins over a password.
        """
        account, user = settings.snowflake_account.strip(), settings.snowflake_user.strip()
        missing = [f"{_ENV}{n}" for n, v in (("ACCOUNT", account), ("USER", user)) if not v]
        if missing:
            raise InputError(f"the snowflake target needs {' and '.join(missing)}")
        password = settings.snowflake_password.get_secret_value()
        passphrase = settings.snowflake_private_key_passphrase.get_secret_value()
        key_path = settings.snowflake_private_key_path.strip()
        key_text = settings.snowflake_private_key.get_secret_value().strip()
        if key_path and key_text:
            raise InputError(f"set {_ENV}PRIVATE_KEY_PATH or {_ENV}PRIVATE_KEY, not both")
        pem: bytes | None = None
        if key_path:
            try:
                pem = Path(key_path).expanduser().read_bytes()
            except OSError as exc:
                raise InputError(
                    f"cannot read {_ENV}PRIVATE_KEY_PATH {key_path}: {exc.strerror}"
                ) from None
        elif key_text:
            pem = key_text.replace("\\n", "\n").encode()
        if pem is None and not password:
            raise InputError(
                f"no Snowflake credentials: set {_ENV}PASSWORD, or {_ENV}PRIVATE_KEY_PATH or "
                f"{_ENV}PRIVATE_KEY (with {_ENV}PRIVATE_KEY_PASSPHRASE if it is encrypted)"
            )
        private_key = load_private_key(pem, passphrase or None) if pem is not None else None
        secrets = [password, passphrase, key_text]
        if pem is not None:
            secrets += [ln for ln in pem.decode(errors="replace").splitlines() if len(ln) >= 16]
        for secret in secrets:
            register_secret(secret)  # masked in every log line from now on
        return cls(
            account=account,
            user=user,
            database=_identifier(settings.snowflake_database, "DATABASE"),
            schema=_identifier(settings.snowflake_schema, "SCHEMA"),
            warehouse=_identifier(settings.snowflake_warehouse, "WAREHOUSE", upper=False)
            if settings.snowflake_warehouse.strip()
            else "",
            role=_identifier(settings.snowflake_role, "ROLE", upper=False)
            if settings.snowflake_role.strip()
            else "",
            password="" if private_key else password,
            private_key=private_key,
            secrets=tuple(s for s in secrets if s),
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


def _default_connect(**kwargs: Any) -> Any:
    import snowflake.connector  # lazy: the connector takes a while to import

    return snowflake.connector.connect(**kwargs)


class SnowflakeSink:
    """Cache tables in a Snowflake database and schema.

    :param config: validated connection settings.
    :param connect: builds a DB-API connection from ``config.connect_kwargs()``; default
        ``snowflake.connector.connect`` (tests may pass their own).
    """

    target = "snowflake"

    def __init__(self, config: SnowflakeConfig, connect: Callable[..., Any] | None = None) -> None:
        self._config = config
        self._connect = connect or _default_connect
        self._conn: Any = None

    def __repr__(self) -> str:
        return f"SnowflakeSink({self._config!r})"

    def table_for(self, tenant: str, metric: str, grain: Grain) -> CacheTable:
        """Return ``DB.SCHEMA.CACHE_<TENANT>_<METRIC>_<GRAIN>``; raise InputError if unsafe."""
        name = cache_table_name(tenant, metric, grain)
        quote(name + STAGE_SUFFIX, "cache table name")
        return CacheTable(name, f"{self._config.database}.{self._config.schema}.{name}")

    def open(self) -> None:
        """Connect (password or key pair); raise SinkError when Snowflake refuses."""
        if self._conn is not None:
            return
        cfg = self._config
        log.debug("connecting to Snowflake account %s as %s (%s)", cfg.account, cfg.user, cfg.auth)
        with self._translate(f"connect as {cfg.user}"):
            self._conn = self._connect(**cfg.connect_kwargs())

    def ensure_table(self, table: CacheTable) -> None:
        """Create ``table`` if it does not exist."""
        with self._translate(f"create {table.qualified}"), self._cursor() as cur:
            cur.execute(f"CREATE TABLE IF NOT EXISTS {self._fqn(table)} ({_COLUMNS_DDL})")

    def replace(
        self, table: CacheTable, frame: pd.DataFrame, grain: Grain, loaded_at: datetime
    ) -> LoadStats:
        """Stage ``frame`` with write_pandas, then swap it in with one transaction."""
        from snowflake.connector.pandas_tools import write_pandas

        target, stage_name = self._fqn(table), table.name + STAGE_SUFFIX
        stage = quote(stage_name)
        stamp = loaded_at.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
        with self._translate(f"load {table.qualified}"), self._cursor() as cur:
            cur.execute(f"CREATE TABLE IF NOT EXISTS {target} ({_COLUMNS_DDL})")
            cur.execute(f"CREATE OR REPLACE TEMPORARY TABLE {stage} ({_STAGE_DDL})")
            try:
                if not frame.empty:
                    upper = frame[list(FRAME_COLUMNS)].rename(columns=str.upper)
                    ok, _chunks, staged, _ = write_pandas(
                        self._conn, upper, stage_name, quote_identifiers=True
                    )
                    if not ok or staged != len(frame):
                        raise SinkError(
                            f"cannot load {table.qualified}: staged {staged} of {len(frame)} rows"
                        )
                cur.execute("BEGIN")
                try:
                    cur.execute(f"DELETE FROM {target}")
                    cur.execute(
                        f'INSERT INTO {target} ({_FRAME_COLS}, "GRAIN", "LOADED_AT") '
                        f"SELECT {_FRAME_COLS}, %(grain)s, TO_TIMESTAMP_NTZ(%(loaded_at)s) "
                        f"FROM {stage}",
                        {"grain": grain.value, "loaded_at": stamp},
                    )
                    cur.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(Exception):
                        cur.execute("ROLLBACK")
                    raise
            finally:
                with contextlib.suppress(Exception):
                    cur.execute(f"DROP TABLE IF EXISTS {stage}")
            cur.execute(f"SELECT COUNT(*) FROM {target}")
            rows = int(cur.fetchone()[0])
            size = self._size(cur, table)
        if size is None or (size == 0 and rows > 0):  # not reported (fakesnow says 0)
            return LoadStats(rows, estimate_bytes(frame, grain), size_estimated=True)
        return LoadStats(rows, size)

    def read(self, table: CacheTable) -> list[CacheRow] | None:
        """Return the table's rows (None when it does not exist)."""
        with self._translate(f"read {table.qualified}"), self._cursor() as cur:
            cur.execute(
                f"SELECT COUNT(*) FROM {quote(self._config.database)}.INFORMATION_SCHEMA.TABLES "
                "WHERE TABLE_SCHEMA = %(schema)s AND TABLE_NAME = %(name)s",
                {"schema": self._config.schema, "name": table.name},
            )
            if not cur.fetchone()[0]:
                return None
            cur.execute(f"SELECT {_FRAME_COLS} FROM {self._fqn(table)}")
            rows = cur.fetchall()
        return [(_day(r[0]), r[1], r[2], float(r[3])) for r in rows]

    def close(self) -> None:
        """Close the connection, if open."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def _fqn(self, table: CacheTable) -> str:
        cfg = self._config
        return ".".join((quote(cfg.database), quote(cfg.schema), quote(table.name)))

    def _size(self, cur: Any, table: CacheTable) -> int | None:
        cur.execute(
            f"SELECT BYTES FROM {quote(self._config.database)}.INFORMATION_SCHEMA.TABLES "
            "WHERE TABLE_SCHEMA = %(schema)s AND TABLE_NAME = %(name)s",
            {"schema": self._config.schema, "name": table.name},
        )
        row = cur.fetchone()
        return None if row is None or row[0] is None else int(row[0])

    @contextlib.contextmanager
    def _cursor(self) -> Iterator[Any]:
        if self._conn is None:
            raise SinkError("the Snowflake sink is not open: call open() first")
        cur = self._conn.cursor()
        try:
            yield cur
        finally:
            with contextlib.suppress(Exception):
                cur.close()

    @contextlib.contextmanager
    def _translate(self, action: str) -> Iterator[None]:
        """Turn every error of the driver stack into SinkError, with secrets masked.

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
            detail = self._config.scrub(first or type(exc).__name__)
            where = f"Snowflake account {self._config.account}"
            error = SinkError(f"{where}: cannot {action}: {detail}", endpoint=self._config.account)
            if self._config.scrub(text) != text:
                raise error from None  # the driver echoed a secret: do not chain it
            raise error from exc


def _day(value: Any) -> date:
    """A DATE column's value as a date (the connector may hand back a datetime or text)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    return value  # type: ignore[no-any-return]
