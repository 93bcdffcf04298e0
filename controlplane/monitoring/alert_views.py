"""Alerts as readers see them: `AlertInfo`, built from rows with the versions and agents they
name, and the reads (active alerts, a deployment's alert list, counts for Prometheus).

`alerts.py` writes alerts (open, escalate, acknowledge, resolve) and returns `AlertInfo`s built here;
nothing here changes an alert.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from controlplane.context import Context
from controlplane.store.models import AgentDeploymentRow, AgentRow, AlertRow, ModelVersionRow
from core.vocabulary import ACTIVE_ALERT_STATES

AGENT_LOST = "agent_lost"  # the AgentHub's alert for an agent that went silent

MAX_LIST = 1000


@dataclass(frozen=True)
class AlertInfo:
    id: int
    deployment: str
    model: str  # "" when the alert is not about one version
    version: str
    version_id: int | None
    kind: str
    subject: str  # the metric or feature of a condition alert; "" when keyed by version
    severity: str
    state: str
    message: str
    value: float
    occurrences: int
    opened_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    acknowledged_by: str
    acknowledged_at: datetime | None
    agent_id: str
    agent: str  # the agent's name ("" when not about an agent)

    def to_json(self, transition: str = "") -> dict[str, Any]:
        return {
            "id": self.id,
            "transition": transition,
            "deployment": self.deployment,
            "version": f"{self.model}:{self.version}" if self.model else "",
            "kind": self.kind,
            "subject": self.subject,
            "severity": self.severity,
            "state": self.state,
            "message": self.message,
            "value": self.value,
            "occurrences": self.occurrences,
            "agent": self.agent,
            "opened_at": self.opened_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
            "acknowledged_by": self.acknowledged_by,
            "acknowledged_at": self.acknowledged_at.isoformat() if self.acknowledged_at else None,
        }


def alert_info(session: Session, row: AlertRow) -> AlertInfo:
    return alert_infos(session, [row])[0]


def alert_infos(session: Session, rows: Sequence[AlertRow]) -> list[AlertInfo]:
    """The alerts as the API shows them; the versions and agents they name are read in one query
    each, whatever the number of alerts."""
    version_ids = {r.version_id for r in rows if r.version_id is not None}
    agent_ids = {r.agent_id for r in rows if r.agent_id}
    versions: dict[int, tuple[str, str]] = {}
    if version_ids:
        found = session.execute(
            select(ModelVersionRow.id, ModelVersionRow.model, ModelVersionRow.version).where(
                ModelVersionRow.id.in_(version_ids)
            )
        )
        versions = {vid: (model, version) for vid, model, version in found}
    agents: dict[str, str] = {}
    if agent_ids:
        found_agents = session.execute(select(AgentRow.id, AgentRow.name).where(AgentRow.id.in_(agent_ids)))
        agents = {agent_id: name for agent_id, name in found_agents}
    infos = []
    for row in rows:
        model, version = versions.get(row.version_id, ("", "")) if row.version_id is not None else ("", "")
        agent = (agents.get(row.agent_id) or row.agent_id) if row.agent_id else ""
        infos.append(
            AlertInfo(
                id=row.id,
                deployment=row.deployment,
                model=model,
                version=version,
                version_id=row.version_id,
                kind=row.kind,
                subject=row.subject or "",
                severity=row.severity,
                state=row.state,
                message=row.message,
                value=float(row.value),
                occurrences=int(row.occurrences),
                opened_at=row.opened_at,
                updated_at=row.updated_at,
                resolved_at=row.resolved_at,
                acknowledged_by=row.acknowledged_by or "",
                acknowledged_at=row.acknowledged_at,
                agent_id=row.agent_id or "",
                agent=agent,
            )
        )
    return infos


def active_alerts(ctx: Context, deployment: str | None = None) -> list[AlertInfo]:
    with ctx.db.session() as session:
        query = select(AlertRow).where(AlertRow.state.in_(ACTIVE_ALERT_STATES)).order_by(AlertRow.id)
        if deployment is not None:
            query = query.where(AlertRow.deployment == deployment)
        return alert_infos(session, session.scalars(query).all())


def list_alerts(
    ctx: Context,
    include_resolved: bool = False,
    deployment: str = "",
    limit: int = MAX_LIST,
    before_id: int | None = None,
) -> list[AlertInfo]:
    """Newest first, at most `limit`; with `before_id`, only older alerts (the next page).

    A deployment's alerts include the `agent_lost` alerts of agents that served it (applied one of
    its generations): a lost agent is a lost share of that deployment's capacity.
    """
    with ctx.db.session() as session:
        query = select(AlertRow)
        if not include_resolved:
            query = query.where(AlertRow.state.in_(ACTIVE_ALERT_STATES))
        if deployment:
            served = select(AgentDeploymentRow.agent_id).where(
                AgentDeploymentRow.deployment == deployment, AgentDeploymentRow.applied_generation > 0
            )
            query = query.where(
                or_(
                    AlertRow.deployment == deployment,
                    and_(AlertRow.kind == AGENT_LOST, AlertRow.agent_id.in_(served)),
                )
            )
        if before_id is not None:
            query = query.where(AlertRow.id < before_id)
        rows = session.scalars(query.order_by(AlertRow.id.desc()).limit(limit)).all()
        return alert_infos(session, rows)


def open_counts(ctx: Context) -> dict[str, int]:
    """Active alerts per severity (for Prometheus)."""
    with ctx.db.session() as session:
        rows = session.execute(
            select(AlertRow.severity, func.count())
            .where(AlertRow.state.in_(ACTIVE_ALERT_STATES))
            .group_by(AlertRow.severity)
        )
        return {severity: int(n) for severity, n in rows}
