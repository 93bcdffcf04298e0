"""The prediction log: log_segments (segments stored by the control plane), deployments'
log_sample_rate, and the agents' dropped log rows beside their dropped reports

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "log_segments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.String(length=64), nullable=False),
        sa.Column("segment_id", sa.String(length=64), nullable=False),
        sa.Column("deployment", sa.String(length=128), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("version", sa.String(length=128), nullable=False),
        sa.Column("date", sa.String(length=10), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log_segments")),
        sa.UniqueConstraint("agent_id", "segment_id", name=op.f("uq_log_segments_agent_id_segment_id")),
    )
    with op.batch_alter_table("log_segments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_log_segments_deployment"), ["deployment"], unique=False)
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("log_sample_rate", sa.Float(), server_default="1", nullable=False))
    with op.batch_alter_table("agent_report_drops", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dropped_log_rows", sa.BigInteger(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("agent_report_drops", schema=None) as batch_op:
        batch_op.drop_column("dropped_log_rows")
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_column("log_sample_rate")
    with op.batch_alter_table("log_segments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_log_segments_deployment"))
    op.drop_table("log_segments")
