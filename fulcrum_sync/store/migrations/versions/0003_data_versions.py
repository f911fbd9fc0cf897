"""Data versions: a counter per context raised by every series write that changed rows, the
version each cache load read, and an index for the latest succeeded sync period per context.

Contexts with stored series start at version 1; cache loads recorded before this revision
have no version, so the first load after the upgrade copies each context once more.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "series_versions",
        sa.Column("tenant_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("metric_id", sa.String(length=64), nullable=False),
        sa.Column("grain", sa.String(length=8), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "metric_id", "grain"),
    )
    with op.batch_alter_table("cache_loads") as batch:
        batch.add_column(sa.Column("data_version", sa.Integer(), nullable=True))
    op.create_index(
        "ix_run_items_latest",
        "run_items",
        ["kind", "grain", "status", "tenant", "metric_id", "period"],
        unique=False,
    )
    now = datetime.now(UTC)
    if op.get_context().dialect.name != "postgresql":
        now = now.replace(tzinfo=None)  # as UTCDateTime stores it on SQLite
    stored = sa.union(
        sa.select(sa.column("tenant_id"), sa.column("metric_id"), sa.column("grain")).select_from(
            sa.table("metric_time_series")
        ),
        sa.select(sa.column("tenant_id"), sa.column("metric_id"), sa.column("grain")).select_from(
            sa.table("metric_dimensional_time_series")
        ),
    ).subquery()
    versions = sa.table(
        "series_versions",
        sa.column("tenant_id"),
        sa.column("metric_id"),
        sa.column("grain"),
        sa.column("version"),
        sa.column("changed_at"),
    )
    op.execute(
        versions.insert().from_select(
            ["tenant_id", "metric_id", "grain", "version", "changed_at"],
            sa.select(
                stored.c.tenant_id,
                stored.c.metric_id,
                stored.c.grain,
                sa.literal(1),
                sa.literal(now, sa.DateTime(timezone=True)),
            ),
        )
    )


def downgrade() -> None:
    op.drop_index("ix_run_items_latest", table_name="run_items")
    with op.batch_alter_table("cache_loads") as batch:
        batch.drop_column("data_version")
    op.drop_table("series_versions")
