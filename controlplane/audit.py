"""The audit trail: every mutation writes one event in the same transaction as the change."""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, cast, literal, or_, select
from sqlalchemy.orm import Session

from controlplane.domain import AuditEntry, Principal
from controlplane.store.db import Database
from controlplane.store.models import AlertRow, AuditEventRow, DeploymentRow, ExperimentRow
from core.errors import InvalidInput

MAX_LIST = 1000
MAX_TARGET = 512  # the column's width: a longer target can match nothing


def record(session: Session, principal: Principal, action: str, target: str, **details: Any) -> None:
    session.add(AuditEventRow(principal=principal.name, action=action, target=target, details=details))


def list_audit(db: Database, target: str = "", limit: int = 100, deployment: str = "") -> list[AuditEntry]:
    """Newest first. `target` matches one target exactly; `deployment` matches every event about
    that deployment: its own changes, its experiments' (start, pause, gate failures, promotion...)
    and its alerts' acknowledgements. Both may be given (an event must match both)."""
    if len(target) > MAX_TARGET:
        raise InvalidInput(f"the audit target is {len(target)} characters; the limit is {MAX_TARGET}")
    limit = min(limit or 100, MAX_LIST)
    with db.session() as session:
        query = select(AuditEventRow).order_by(AuditEventRow.id.desc()).limit(limit)
        if target:
            query = query.where(AuditEventRow.target == target)
        if deployment:
            query = query.where(_about_deployment(deployment))
        return [
            AuditEntry(r.id, r.at, r.principal, r.action, r.target, dict(r.details))
            for r in session.scalars(query)
        ]


def _about_deployment(deployment: str) -> Any:
    """The targets an event about `deployment` carries: its name, its experiments' names and
    `alert:ID` of its alerts (the forms `record` is called with)."""
    experiments = (
        select(ExperimentRow.name)
        .join(DeploymentRow, DeploymentRow.id == ExperimentRow.deployment_id)
        .where(DeploymentRow.name == deployment)
    )
    alerts = select(literal("alert:") + cast(AlertRow.id, String)).where(AlertRow.deployment == deployment)
    return or_(
        AuditEventRow.target == deployment,
        AuditEventRow.target.in_(experiments),
        AuditEventRow.target.in_(alerts),
    )
