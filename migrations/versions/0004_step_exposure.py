"""experiments.step_generation and step_live_at: a rollout step holds from when agents applied it

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 11:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("step_generation", sa.BigInteger(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("step_live_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.drop_column("step_live_at")
        batch_op.drop_column("step_generation")
