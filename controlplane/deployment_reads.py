"""Deployments read back: the list of deployments with their splits, and one deployment's history.

Read-only; every change is `deployments.py`'s.
"""

from __future__ import annotations

from sqlalchemy import select

from controlplane.context import Context
from controlplane.deployment_history import MAX_HISTORY
from controlplane.deployments import deployment_info, find_deployment
from controlplane.domain import DeploymentInfo, HistoryEntry
from controlplane.store.models import DeploymentHistoryRow, DeploymentRow


def list_deployments(ctx: Context, name: str = "") -> list[DeploymentInfo]:
    with ctx.db.session() as session:
        if name:
            return [deployment_info(session, find_deployment(session, name))]
        rows = session.scalars(select(DeploymentRow).order_by(DeploymentRow.name)).all()
        return [deployment_info(session, r) for r in rows]


def list_history(ctx: Context, deployment: str, limit: int = 100) -> list[HistoryEntry]:
    with ctx.db.session() as session:
        row = find_deployment(session, deployment)
        rows = session.scalars(
            select(DeploymentHistoryRow)
            .where(DeploymentHistoryRow.deployment_id == row.id)
            .order_by(DeploymentHistoryRow.generation.desc())
            .limit(min(limit or 100, MAX_HISTORY))
        )
        return [
            HistoryEntry(
                r.id, deployment, r.generation, r.action, r.principal, r.reason, list(r.splits), r.at
            )
            for r in rows
        ]
