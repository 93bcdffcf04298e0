"""agent_deployments.applied_digest: what an agent applied, by content, not by number alone

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("agent_deployments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("applied_digest", sa.String(length=64), server_default="", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("agent_deployments", schema=None) as batch_op:
        batch_op.drop_column("applied_digest")
