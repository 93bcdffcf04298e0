"""alerts.subject: health alerts follow their condition; experiments.paused_at: an operator's pause;
deployments.previous_champion_id recomputed as a stack (the last champion not itself rolled back)

An alert with a subject (the metric, or the drifting feature) is identified by (deployment, kind,
subject), so a champion change keeps its id, acknowledgement and start. The open health alerts of
before are given their subject here, and duplicates of one condition (one per version before)
resolve into the oldest. previous_champion_id was the champion replaced last (a toggle); it is
recomputed from the history with the rule of `controlplane.deployment_history.restorable` (copied here
so that this revision never changes).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 18:00:00
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

METRIC_KINDS = ("error_rate", "latency_p95", "accuracy", "mae", "within_tolerance")
FEATURE = re.compile(r"feature (\S+) drifted")

alerts = sa.table(
    "alerts",
    sa.column("id", sa.Integer),
    sa.column("deployment", sa.String),
    sa.column("agent_id", sa.String),
    sa.column("kind", sa.String),
    sa.column("subject", sa.String),
    sa.column("state", sa.String),
    sa.column("message", sa.Text),
    sa.column("resolved_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("subject", sa.String(length=255), server_default="", nullable=False))
        batch_op.create_index("ix_alerts_condition", ["deployment", "kind", "subject", "state"], unique=False)
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True))
    _backfill_subjects()
    _recompute_previous_champions()


def _backfill_subjects() -> None:
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(alerts.c.id, alerts.c.deployment, alerts.c.agent_id, alerts.c.kind, alerts.c.message)
        .where(alerts.c.state != "resolved", alerts.c.kind.in_((*METRIC_KINDS, "drift")))
        .order_by(alerts.c.id)
    ).all()
    kept: dict[tuple[str, str | None, str, str], int] = {}
    now = datetime.now(UTC)
    for id_, deployment, agent_id, kind, message in rows:
        if kind == "drift":
            found = FEATURE.search(message or "")
            if found is None:
                continue  # no feature named: it stays keyed by its version
            subject = found.group(1)
        else:
            subject = kind
        key = (deployment, agent_id, kind, subject)
        if key in kept:
            connection.execute(
                sa.update(alerts)
                .where(alerts.c.id == id_)
                .values(
                    state="resolved",
                    resolved_at=now,
                    updated_at=now,
                    message=f"{message} (resolved: merged into alert {kept[key]})",
                )
            )
            continue
        kept[key] = id_
        connection.execute(sa.update(alerts).where(alerts.c.id == id_).values(subject=subject))


def _restorable(history: list[tuple[str, list[dict]]]) -> str | None:
    reigns: list[str] = []
    rolled_back: set[str] = set()
    for action, splits in history:
        champion = next((s["version"] for s in splits if s.get("role") == "champion"), None)
        if champion is None or (reigns and reigns[-1] == champion):
            continue
        if action == "rollback" and reigns:
            rolled_back.add(reigns[-1])
        rolled_back.discard(champion)
        reigns.append(champion)
    if not reigns:
        return None
    current = reigns[-1]
    return next((ref for ref in reversed(reigns[:-1]) if ref != current and ref not in rolled_back), None)


def _recompute_previous_champions() -> None:
    connection = op.get_bind()
    history = sa.table(
        "deployment_history",
        sa.column("deployment_id", sa.Integer),
        sa.column("generation", sa.BigInteger),
        sa.column("action", sa.String),
        sa.column("splits", sa.JSON),
    )
    deployments = sa.table("deployments", sa.column("id", sa.Integer), sa.column("previous_champion_id", sa.Integer))
    versions = sa.table("model_versions", sa.column("id", sa.Integer), sa.column("model", sa.String), sa.column("version", sa.String))
    ids = {f"{m}:{v}": i for i, m, v in connection.execute(sa.select(versions.c.id, versions.c.model, versions.c.version))}
    for (deployment_id,) in connection.execute(sa.select(deployments.c.id)).all():
        entries = connection.execute(
            sa.select(history.c.action, history.c.splits)
            .where(history.c.deployment_id == deployment_id)
            .order_by(history.c.generation)
        ).all()
        ref = _restorable([(action, list(splits or [])) for action, splits in entries])
        connection.execute(
            sa.update(deployments)
            .where(deployments.c.id == deployment_id)
            .values(previous_champion_id=ids.get(ref) if ref else None)
        )


def downgrade() -> None:
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.drop_column("paused_at")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_alerts_condition")
        batch_op.drop_column("subject")
