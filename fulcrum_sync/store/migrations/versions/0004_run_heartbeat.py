"""Run heartbeats: a live run refreshes ``runs.heartbeat_at``, so a later run on another
host can tell a run whose process is gone (heartbeat older than a lease) and close it
``abandoned``; an index on ``outcome`` finds the runs still ``running`` at once.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_runs_outcome", "runs", ["outcome"])


def downgrade() -> None:
    op.drop_index("ix_runs_outcome", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("heartbeat_at")
