"""Window digests: ``metric_sync_status.window_digest`` keeps a digest of the rows the
series' last sync wrote (store/digests.py), so that the next incremental sync whose fetched
window equals them skips reading the stored window back and writing it. NULL (every row
before this revision) means "unknown": that sync reads the window back as before.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("metric_sync_status") as batch:
        batch.add_column(sa.Column("window_digest", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("metric_sync_status") as batch:
        batch.drop_column("window_digest")
