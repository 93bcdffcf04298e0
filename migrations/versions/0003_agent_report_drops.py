"""agent_report_drops: the dropped-report counter each agent last reported, kept across restarts

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 11:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "agent_report_drops",
        sa.Column("agent_id", sa.String(length=64), nullable=False),
        sa.Column("dropped", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("agent_id", name=op.f("pk_agent_report_drops")),
    )


def downgrade() -> None:
    op.drop_table("agent_report_drops")
