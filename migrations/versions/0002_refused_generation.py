"""agent_deployments.refused_generation: which generation an agent refused, so waits end early

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("agent_deployments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("refused_generation", sa.BigInteger(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("agent_deployments", schema=None) as batch_op:
        batch_op.drop_column("refused_generation")
