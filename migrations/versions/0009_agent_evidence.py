"""metric_windows.agent_id: every window keeps the agent that reported it (experiments weigh the
evidence per agent); metric_receipts.refused: the windows of a report refused on ingest, by reason

Windows stored before are attributed to no agent (""); their rollups keep it so.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("metric_windows", schema=None) as batch_op:
        batch_op.add_column(sa.Column("agent_id", sa.String(length=64), server_default="", nullable=False))
    with op.batch_alter_table("metric_receipts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("refused", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("metric_receipts", schema=None) as batch_op:
        batch_op.drop_column("refused")
    with op.batch_alter_table("metric_windows", schema=None) as batch_op:
        batch_op.drop_column("agent_id")
