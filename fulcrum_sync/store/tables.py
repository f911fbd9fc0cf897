"""The state database's tables (SQLAlchemy Core). Alembic migrations create them."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from fulcrum_sync.sql_types import UTCDateTime

metadata = MetaData()

NO_DIMENSION = ""  # the base series' "dimension" in sync status rows
NO_PATTERN = ""  # a metric context's "pattern" in the contexts table
NO_PATTERN_DIMENSION = "none"  # pattern results of patterns that take no dimension

tenants = Table(
    "tenants",
    metadata,
    Column("tenant_id", Integer, primary_key=True, autoincrement=False),
    Column("identifier", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False, default=""),
    Column("active", Boolean, nullable=False, default=True),
    Column("cache_enabled", Boolean, nullable=False, default=True),
    Column("pattern_settings", JSON, nullable=False, default=dict),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("filters", JSON, nullable=False, default=list, server_default="[]"),  # Cube filters
    # The tenant's own Cube and Snowflake cache (names of variables and files, no secrets).
    Column("cube", JSON, nullable=True),
    Column("cache", JSON, nullable=True),
)

metric_definitions = Table(
    "metric_definitions",
    metadata,
    Column("tenant_id", Integer, primary_key=True, autoincrement=False),
    Column("metric_id", String(64), primary_key=True),
    Column("label", String(200), nullable=False, default=""),
    Column("definition", JSON, nullable=False),  # the catalog's MetricDef, as JSON
    Column("definition_hash", String(32), nullable=False),
    Column("grains", JSON, nullable=False),
    Column("patterns", JSON, nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("updated_at", UTCDateTime(), nullable=False),
)

contexts = Table(
    "contexts",
    metadata,
    Column("tenant_id", Integer, primary_key=True, autoincrement=False),
    Column("metric_id", String(64), primary_key=True),
    Column("grain", String(8), primary_key=True),
    Column("pattern", String(64), primary_key=True, default=NO_PATTERN),
    Column("tenant", String(64), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("first_seen", UTCDateTime(), nullable=False),
    Column("last_seen", UTCDateTime(), nullable=False),
    Column("deactivated_at", UTCDateTime()),
)

metric_time_series = Table(
    "metric_time_series",
    metadata,
    Column("tenant_id", Integer, primary_key=True, autoincrement=False),
    Column("metric_id", String(64), primary_key=True),
    Column("grain", String(8), primary_key=True),
    Column("date", Date, primary_key=True),
    Column("value", Float, nullable=False),
)

metric_dimensional_time_series = Table(
    "metric_dimensional_time_series",
    metadata,
    Column("tenant_id", Integer, primary_key=True, autoincrement=False),
    Column("metric_id", String(64), primary_key=True),
    Column("grain", String(8), primary_key=True),
    Column("dimension_name", String(64), primary_key=True),
    Column("dimension_slice", String(255), primary_key=True),
    Column("date", Date, primary_key=True),
    Column("value", Float, nullable=False),
)

metric_targets = Table(
    "metric_targets",
    metadata,
    Column("tenant_id", Integer, primary_key=True, autoincrement=False),
    Column("metric_id", String(64), primary_key=True),
    Column("grain", String(8), primary_key=True),
    Column("date", Date, primary_key=True),
    Column("value", Float, nullable=False),
)

metric_sync_status = Table(
    "metric_sync_status",
    metadata,
    Column("tenant_id", Integer, primary_key=True, autoincrement=False),
    Column("metric_id", String(64), primary_key=True),
    Column("grain", String(8), primary_key=True),
    Column("dimension", String(64), primary_key=True, default=NO_DIMENSION),
    Column("status", String(16), nullable=False),  # succeeded | failed
    Column("sync_type", String(16), nullable=False),
    Column("period", Date, nullable=False),
    Column("window_start", Date, nullable=False),
    Column("window_end", Date, nullable=False),
    Column("definition_hash", String(32), nullable=False),
    Column("last_success_at", UTCDateTime()),
    Column("last_success_hash", String(32)),
    Column("last_attempt_at", UTCDateTime(), nullable=False),
    Column("failing_since", UTCDateTime()),
    Column("error", Text),
    Column("rows_fetched", Integer, nullable=False, default=0),
    Column("rows_stored", Integer, nullable=False, default=0),
    Column("rows_skipped", Integer, nullable=False, default=0),
    Column("run_id", String(36)),
    # What the series' last sync wrote (store/digests.py); NULL: unknown, read the window back.
    Column("window_digest", Text),
)

pattern_results = Table(
    "pattern_results",
    metadata,
    Column("tenant_id", Integer, primary_key=True, autoincrement=False),
    Column("metric_id", String(64), primary_key=True),
    Column("pattern", String(64), primary_key=True),
    Column("grain", String(8), primary_key=True),
    Column("analysis_period", Date, primary_key=True),
    Column("dimension", String(64), primary_key=True, default=NO_PATTERN_DIMENSION),
    Column("version", String(16), nullable=False),
    Column("status", String(16), nullable=False),  # succeeded | skipped | failed
    Column("window_start", Date),
    Column("window_end", Date),
    Column("result", JSON),
    Column("error", JSON),
    Column("run_id", String(36)),
    Column("run_at", UTCDateTime(), nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(36), primary_key=True),
    Column("command", String(32), nullable=False),
    Column("arguments", JSON, nullable=False),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime()),
    # running | succeeded | partial | failed | interrupted | abandoned (process gone)
    Column("outcome", String(16)),
    Column("summary", JSON),
    Column("heartbeat_at", UTCDateTime()),  # refreshed while the run lives (other hosts)
    Index("ix_runs_started_at", "started_at"),
    Index("ix_runs_outcome", "outcome"),
)

run_items = Table(
    "run_items",
    metadata,
    Column("run_key", String(400), primary_key=True),
    Column("kind", String(16), nullable=False),  # sync | pattern
    Column("grain", String(8), nullable=False),
    Column("period", Date, nullable=False),
    Column("tenant", String(64), nullable=False),
    Column("metric_id", String(64), nullable=False),
    Column("pattern", String(64), nullable=False, default=NO_PATTERN),
    Column("status", String(16), nullable=False),  # pending | running | succeeded | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("lease_owner", String(128)),
    Column("lease_expires_at", UTCDateTime()),
    Column("run_id", String(36)),
    Column("counts", JSON),
    Column("error", Text),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("started_at", UTCDateTime()),
    Column("finished_at", UTCDateTime()),
    Index("ix_run_items_status", "status"),
    Index("ix_run_items_grain_period", "grain", "period"),
    # The latest succeeded sync period per context (catch-up and status freshness).
    Index("ix_run_items_latest", "kind", "grain", "status", "tenant", "metric_id", "period"),
)

backfills = Table(
    "backfills",
    metadata,
    Column("backfill_id", String(36), primary_key=True),
    Column("grain", String(8), nullable=False),
    Column("start_period", Date, nullable=False),
    Column("end_period", Date, nullable=False),
    Column("arguments", JSON, nullable=False),
    Column("total_items", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime()),
)

backfill_items = Table(
    "backfill_items",
    metadata,
    Column("backfill_id", String(36), primary_key=True),
    Column("run_key", String(400), primary_key=True),
    Column("position", Integer, nullable=False),
)

cache_loads = Table(
    "cache_loads",
    metadata,
    Column("tenant_id", Integer, primary_key=True, autoincrement=False),
    Column("metric_id", String(64), primary_key=True),
    Column("grain", String(8), primary_key=True),
    Column("target", String(16), primary_key=True),
    Column("table_name", String(400), nullable=False),
    Column("rows_loaded", Integer, nullable=False),
    Column("size_mb", Float),
    Column("window_start", Date),
    Column("window_end", Date),
    Column("status", String(16), nullable=False),
    Column("error", Text),
    Column("loaded_at", UTCDateTime(), nullable=False),
    Column("duration_seconds", Float),
    Column("data_version", Integer),  # the context's series_versions.version this load read
)

# One counter per context, raised in the transaction of every write that changed its stored
# series (store/sync_write.write_context) or deleted some (state reset): a cache load whose last
# successful load read the same version has nothing new to copy.
series_versions = Table(
    "series_versions",
    metadata,
    Column("tenant_id", Integer, primary_key=True, autoincrement=False),
    Column("metric_id", String(64), primary_key=True),
    Column("grain", String(8), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("changed_at", UTCDateTime(), nullable=False),
)
