"""deployment_policies: a deployment's health thresholds and its action on sustained critical
health, with the clock of a pending action (issue 15)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-13 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "deployment_policies",
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("updated_by", sa.String(length=128), server_default="", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("critical_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("critical_generation", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("calm_rounds", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_action", sa.Text(), server_default="", nullable=False),
        sa.Column("last_action_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["deployment_id"], ["deployments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("deployment_id"),
    )


def downgrade() -> None:
    op.drop_table("deployment_policies")
