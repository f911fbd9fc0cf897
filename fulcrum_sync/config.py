"""Settings from ``FULCRUM_SYNC_*`` environment variables and an optional ``.env`` file."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from fulcrum_sync.domain import GRAINS, Grain, InputError, SyncType

DEFAULT_DATABASE_URL = "sqlite:///fulcrum_sync.db"
# Dates a setting may name: every period, window and target horizon around them computes.
EARLIEST_DATE, LATEST_DATE = date(1900, 1, 1), date(9000, 12, 31)


@dataclass(frozen=True, slots=True)
class DatabaseLimits:
    """How long the state database may keep us waiting (0 turns a limit off).

    :param lock_seconds: a PostgreSQL statement waiting this long for a lock fails
        (``lock_timeout``); FULCRUM_SYNC_DATABASE_LOCK_TIMEOUT_SECONDS.
    :param statement_seconds: a PostgreSQL statement running this long is cancelled
        (``statement_timeout``); FULCRUM_SYNC_DATABASE_STATEMENT_TIMEOUT_SECONDS.
    :param retry_seconds: how long to wait for a lost or restarting server before giving up
        (exit 3); FULCRUM_SYNC_DATABASE_RETRY_SECONDS. 0: one immediate retry.
    :param dead_after_seconds: a PostgreSQL connection silent this long behind a cut network
        counts as lost (TCP keepalives, ``tcp_user_timeout``);
        FULCRUM_SYNC_DATABASE_DEAD_AFTER_SECONDS. 0: the system's defaults (hours).
    """

    lock_seconds: float = 30.0
    statement_seconds: float = 300.0
    retry_seconds: float = 0.0
    dead_after_seconds: float = 30.0


class CubeSettings(BaseModel):
    """The Cube source's settings: ``settings.cube.api_url`` is ``FULCRUM_SYNC_CUBE_API_URL``.

    A sub-model of :class:`Settings` read from the same flat variable names as before
    (``FULCRUM_SYNC_CUBE_<FIELD>``); ``Settings(cube_api_url=...)`` still works too.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    api_url: str = Field(default="", description="Base URL of the Cube deployment.")
    api_secret: SecretStr = Field(
        default=SecretStr(""), description="Secret that signs Cube's JWTs (HS256)."
    )
    tenant_claim: str = Field(
        default="tenant_id", description="JWT claim that carries the tenant identifier."
    )
    token_ttl_seconds: int = Field(default=300, ge=30, description="JWT lifetime.")
    timeout_seconds: float = Field(default=30.0, gt=0, description="One HTTP request.")
    wait_deadline_seconds: float = Field(
        default=600.0, gt=0, description="How long to poll Cube's 'Continue wait'."
    )
    retries: int = Field(
        default=5, ge=0, description="Retries of one request on 5xx, timeouts, connection errors."
    )
    retry_budget: int = Field(
        default=1000,
        ge=0,
        description="Retries one run may spend across all its Cube requests; once spent, the "
        "next failure counts as Cube down.",
    )
    max_concurrency: int = Field(
        default=8, ge=1, le=64, description="Cube queries in flight at once, across all workers."
    )
    breaker_reset_seconds: float = Field(
        default=60.0,
        gt=0,
        description="After Cube is found down, how long a long run (backfill) waits before "
        "one trial request (half-open); a short blip then does not end it.",
    )
    page_size: int = Field(
        default=10_000,
        ge=1,
        le=50_000,
        description="Rows per page; at most Cube's CUBEJS_DB_QUERY_LIMIT (halved when Cube "
        "refuses a page as over its limit).",
    )


_NESTED = ("cube",)  # sub-models read from FULCRUM_SYNC_<NAME>_<FIELD>


class Settings(BaseSettings):
    """Everything fulcrum-sync reads from its environment."""

    # env_nested_delimiter "_" with max split 1: FULCRUM_SYNC_CUBE_API_URL is cube.api_url
    # (only sub-model fields are split; flat names such as DATABASE_URL stay whole).
    model_config = SettingsConfigDict(
        env_prefix="FULCRUM_SYNC_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        env_nested_delimiter="_",
        env_nested_max_split=1,
    )

    database_url: SecretStr = Field(
        default=SecretStr(DEFAULT_DATABASE_URL),
        description="SQLAlchemy URL of the state database (SQLite file, or PostgreSQL: "
        "postgres://, postgresql:// and postgresql+psycopg:// all mean psycopg 3).",
    )
    database_retry_seconds: float = Field(
        default=60.0,
        ge=0,
        description="How long a run waits for a lost or restarting state database (the failed "
        "transaction runs again once it is back) before it gives up with exit 3.",
    )
    database_lock_timeout_seconds: float = Field(
        default=30.0,
        ge=0,
        description="PostgreSQL lock_timeout: a statement waiting this long for a lock fails "
        "its context (the run goes on); 0 waits forever.",
    )
    database_statement_timeout_seconds: float = Field(
        default=300.0,
        ge=0,
        description="PostgreSQL statement_timeout: a statement running this long is cancelled "
        "and fails its context; 0 means no limit.",
    )
    database_dead_after_seconds: float = Field(
        default=30.0,
        ge=0,
        description="A PostgreSQL connection that stays silent this long (a cut network: no "
        "answer, no reset) counts as lost, on both sides (TCP keepalives, tcp_user_timeout); "
        "the run then waits for the database as for a restart. 0: the system's defaults.",
    )
    source: str = Field(
        default="demo", description="Semantic source: a name in the source registry (demo, cube)."
    )
    demo_seed: int = Field(default=42, description="Seed of the demo source.")
    cube: CubeSettings = Field(default_factory=CubeSettings, description="The Cube source.")
    history_start: date = Field(
        default=date(2025, 7, 1),
        ge=EARLIEST_DATE,
        le=LATEST_DATE,
        description="First day of history.",
    )
    today: date | None = Field(
        default=None,
        ge=EARLIEST_DATE,
        le=LATEST_DATE,
        description="Pretend today (UTC) is this date, for tests and demos: it moves the last "
        "complete period (the default --period and the latest one accepted) and status. "
        "Unset: the clock.",
    )
    # Overrides of the lookback table (domain/grains.py, SPEC §3): one pair per grain.
    lookback_day_full: int = Field(
        default=GRAINS[Grain.DAY].lookback_full, ge=1, description="Days fetched by a FULL sync."
    )
    lookback_day_incremental: int = Field(
        default=GRAINS[Grain.DAY].lookback_incremental,
        ge=1,
        description="Days re-fetched by an INCREMENTAL sync.",
    )
    lookback_week_full: int = Field(
        default=GRAINS[Grain.WEEK].lookback_full, ge=1, description="Weeks, FULL sync."
    )
    lookback_week_incremental: int = Field(
        default=GRAINS[Grain.WEEK].lookback_incremental, ge=1, description="Weeks, INCREMENTAL."
    )
    lookback_month_full: int = Field(
        default=GRAINS[Grain.MONTH].lookback_full, ge=1, description="Months, FULL sync."
    )
    lookback_month_incremental: int = Field(
        default=GRAINS[Grain.MONTH].lookback_incremental,
        ge=1,
        description="Months, INCREMENTAL sync.",
    )
    lookback_quarter_full: int = Field(
        default=GRAINS[Grain.QUARTER].lookback_full, ge=1, description="Quarters, FULL sync."
    )
    lookback_quarter_incremental: int = Field(
        default=GRAINS[Grain.QUARTER].lookback_incremental,
        ge=1,
        description="Quarters, INCREMENTAL sync.",
    )
    log_format: Literal["auto", "rich", "json"] = Field(
        default="auto", description="auto: JSON lines when not on a terminal; rich; json."
    )
    workers: int = Field(default=4, ge=1, le=64, description="Contexts processed at once.")
    lease_seconds: int = Field(default=120, ge=5, description="Run-key lease length.")
    retention_days: int = Field(
        default=90,
        ge=0,
        description="Days of run history kept: each sync prunes run records, run keys, "
        "superseded pattern results and stale cache-load records older than this after its "
        "work (state prune --keep-days). 0 disables.",
    )
    pushgateway_url: str = Field(
        default="",
        description="Prometheus Pushgateway URL (http://host:9091): every job command pushes "
        "its metrics there at its end. Empty: no push.",
    )
    pushgateway_timeout: float = Field(
        default=5.0, gt=0, le=60, description="Seconds a push to the Pushgateway may take."
    )
    shard_count: int | None = Field(
        default=None, ge=1, description="Backfill shards (Kubernetes Indexed Job completions)."
    )
    cache_target: Literal["local", "snowflake"] = Field(
        default="local", description="Where cache-load writes: the state database or Snowflake."
    )
    snowflake_account: str = Field(default="", description="Snowflake account identifier.")
    snowflake_user: str = Field(default="", description="Snowflake user.")
    snowflake_password: SecretStr = Field(
        default=SecretStr(""), description="Password (or use a key pair)."
    )
    snowflake_private_key_path: str = Field(
        default="", description="Path of a PEM private key file (key-pair auth)."
    )
    snowflake_private_key: SecretStr = Field(
        default=SecretStr(""), description="PEM private key text (key-pair auth, from a secret)."
    )
    snowflake_private_key_passphrase: SecretStr = Field(
        default=SecretStr(""), description="Passphrase of an encrypted private key."
    )
    snowflake_database: str = Field(default="FULCRUM", description="Cache database.")
    snowflake_schema: str = Field(default="CACHE", description="Cache schema.")
    snowflake_warehouse: str = Field(default="", description="Warehouse for loads.")
    snowflake_role: str = Field(default="", description="Role for loads.")

    @model_validator(mode="before")
    @classmethod
    def _flat_sub_settings(cls, data: Any) -> Any:
        """Accept ``cube_api_url=...`` (the flat names) for ``cube={"api_url": ...}``."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for nested in _NESTED:
            flat = {
                k.removeprefix(f"{nested}_"): data.pop(k)
                for k in list(data)
                if k.startswith(f"{nested}_")
            }
            if flat:
                current = data.get(nested)
                if isinstance(current, BaseModel):
                    current = current.model_dump()
                data[nested] = {**(current or {}), **flat}
        return data

    @field_validator("source")
    @classmethod
    def _source_name(cls, value: str) -> str:
        """The registry (``sources/registry.py``) refuses a name it does not hold when the
        services first read the settings (``Deps.get_settings``): it imports us."""
        return value.strip().lower()

    @field_validator("database_url")
    @classmethod
    def _check_url(cls, value: SecretStr) -> SecretStr:
        try:
            make_url(value.get_secret_value())
        except Exception:
            raise ValueError("not a valid SQLAlchemy database URL") from None
        return value

    def now(self) -> datetime:
        """The current time: midnight UTC of FULCRUM_SYNC_TODAY when set, else the clock."""
        if self.today is not None:
            return datetime.combine(self.today, time.min, UTC)
        return datetime.now(UTC)

    @property
    def lookback(self) -> dict[Grain, dict[SyncType, int]]:
        """The lookback table, in periods of each grain, with these settings' overrides."""
        return {
            grain: {t: int(getattr(self, lookback_setting(grain, t))) for t in SyncType}
            for grain in Grain
        }

    @property
    def database_limits(self) -> DatabaseLimits:
        """The state database's lock and statement timeouts and how long to wait for it."""
        return DatabaseLimits(
            lock_seconds=self.database_lock_timeout_seconds,
            statement_seconds=self.database_statement_timeout_seconds,
            retry_seconds=self.database_retry_seconds,
            dead_after_seconds=self.database_dead_after_seconds,
        )

    @property
    def masked_database_url(self) -> str:
        """The database URL with any password replaced by ``***``."""
        return mask_url(self.database_url.get_secret_value())


def setting_fields(
    model: type[BaseModel] = Settings, prefix: str = "FULCRUM_SYNC_"
) -> list[tuple[str, FieldInfo]]:
    """Every setting as (environment variable, field), sub-models' fields under their flat
    names (``FULCRUM_SYNC_CUBE_API_URL``), in declaration order."""
    fields: list[tuple[str, FieldInfo]] = []
    for name, field in model.model_fields.items():
        env = f"{prefix}{name.upper()}"
        sub = field.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            fields.extend(setting_fields(sub, f"{env}_"))
        else:
            fields.append((env, field))
    return fields


def lookback_setting(grain: Grain, sync_type: SyncType) -> str:
    """The Settings field that overrides a lookback: ``lookback_week_full``."""
    return f"lookback_{grain.value}_{sync_type.value.lower()}"


def mask_url(url: str) -> str:
    """Return ``url`` with its password hidden (``secrets.redact_url``, the one redaction)."""
    from fulcrum_sync.secrets import redact_url

    try:
        make_url(url)
    except Exception:
        return "<unparseable database URL>"
    return redact_url(url)


def check_database_choice(settings: Settings, *, self_contained: bool) -> None:
    """Refuse the default SQLite file for a production source (InputError saying what to set).

    A production job must name its state database: on the default it would report success
    on a throw-away file. "Not set" is told from "set to the default" by pydantic's
    ``model_fields_set`` (the environment and ``.env`` both count as set).

    :param self_contained: the source needs no account (the demo): the default is fine. The
        source registry says so (``Deps.check_database_choice`` asks it).
    """
    if self_contained or "database_url" in settings.model_fields_set:
        return
    raise InputError(
        f"FULCRUM_SYNC_SOURCE={settings.source} needs FULCRUM_SYNC_DATABASE_URL (the state "
        "database, e.g. postgresql+psycopg://user@host/db); to keep the state in a SQLite "
        f"file on purpose, set FULCRUM_SYNC_DATABASE_URL={DEFAULT_DATABASE_URL}"
    )


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment; raise InputError with one line per bad value."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"FULCRUM_SYNC_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        )
        raise InputError(f"invalid settings: {problems}") from None
