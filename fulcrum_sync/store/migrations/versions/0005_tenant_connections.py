"""Tenant connections: a tenant's own Cube (``cube``) and Snowflake cache (``cache``).

Both hold the names of the environment variables or files to read secrets from, never a
secret. NULL: the tenant uses the settings' Cube and Snowflake.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("cube", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("cache", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("cache")
        batch.drop_column("cube")
