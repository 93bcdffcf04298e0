"""agents.owner_token and agents.owner_certificate: an agent's id and name are bound to the
credential that registered it (issue 13)

Rows from before this revision are bound to nobody ("" in both): the first credential that
connects under such an id claims it. Indexes on the name (ownership of names) and on the owner
(agents per credential, limits.max_agents_per_credential).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-12 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner_token", sa.String(length=128), server_default="", nullable=False))
        batch_op.add_column(sa.Column("owner_certificate", sa.String(length=255), server_default="", nullable=False))
        batch_op.create_index("ix_agents_name", ["name"], unique=False)
        batch_op.create_index("ix_agents_owner", ["owner_token", "owner_certificate"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.drop_index("ix_agents_owner")
        batch_op.drop_index("ix_agents_name")
        batch_op.drop_column("owner_certificate")
        batch_op.drop_column("owner_token")
