"""label_imports: the label store's imports, one row per import with its summary; the labels
themselves are Parquet files (issue 16, docs/PREDICTION_LOG.md)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 20:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "label_imports",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("deployment", sa.String(length=128), nullable=False),
        sa.Column("principal", sa.String(length=128), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("atomic", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("accepted", sa.BigInteger(), nullable=False),
        sa.Column("duplicates", sa.BigInteger(), nullable=False),
        sa.Column("replaced", sa.BigInteger(), nullable=False),
        sa.Column("unknown_ids", sa.BigInteger(), nullable=False),
        sa.Column("late", sa.BigInteger(), nullable=False),
        sa.Column("refused", sa.BigInteger(), nullable=False),
        sa.Column("refusals", sa.JSON(), nullable=False),
        sa.Column("path", sa.String(length=512), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_label_imports")),
    )
    op.create_index("ix_label_imports_deployment", "label_imports", ["deployment", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_label_imports_deployment", table_name="label_imports")
    op.drop_table("label_imports")
