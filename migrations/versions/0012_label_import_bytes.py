"""label_imports.bytes: each label import's file size, so the label store's disk use is a SQL sum

Imports recorded before this revision get NULL, except those without a file (0). The migration
does not know where the label files are (`[labels] dir` is configuration, not schema), so the
control plane fills the NULLs in lazily: the first disk-use read (`sluice status`) stats those
files once and stores their sizes (controlplane/predlog/retention.py `usage`).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 02:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("label_imports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bytes", sa.BigInteger(), nullable=True))
    op.execute("UPDATE label_imports SET bytes = 0 WHERE path = ''")


def downgrade() -> None:
    with op.batch_alter_table("label_imports", schema=None) as batch_op:
        batch_op.drop_column("bytes")
